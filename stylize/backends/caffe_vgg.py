"""VGG networks (Simonyan & Zisserman) as Caffe backends.

The network is generated from :mod:`stylize.backends.vgg_architecture` with the pooling
chosen; like every network it is then cut after the deepest layer a loss
reads and frozen by ``prototxt.prepare``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from stylize.core import Option

from .caffe_net import CaffeBackend
from .vgg_architecture import POOLING, VGG16_BLOCKS, VGG19_BLOCKS, vgg_prototxt
from .zoo import require_weights


class VGGBackend(CaffeBackend):
    """Shared by the VGG variants: Gatys' layers, average pooling by default.

    ``prototxt``/``weights``/``model_dir`` options replace the built-in
    network or weights, e.g. the full-precision VGG_ILSVRC_19_layers.caffemodel.
    """

    options = (*CaffeBackend.options,
               Option("pooling", str, "avg", "Pooling: average (Gatys' choice, smoother) or max.",
                      choices=tuple(POOLING)))
    blocks: Sequence[int] = VGG19_BLOCKS
    model: str = "vgg19"
    default_content_layers = ("conv4_2",)
    default_style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

    def network(self, prototxt, pooling: str = "avg", **options) -> tuple[str, str]:
        if prototxt is not None:
            return super().network(prototxt)
        return vgg_prototxt(self.blocks, pooling), f"built-in {self.model}"

    def default_weights(self) -> Path:
        return Path(require_weights(self.model))


class VGG19(VGGBackend):
    """VGG19 (ImageNet), the network of Gatys et al.; weights: `stylize models fetch vgg19`."""


class VGG16(VGGBackend):
    """VGG16 (ImageNet), lighter than VGG19; weights: `stylize models fetch vgg16`."""

    blocks = VGG16_BLOCKS
    model = "vgg16"
