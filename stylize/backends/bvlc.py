"""GoogLeNet and CaffeNet from the BVLC model zoo, with their official deploy prototxts.

The prototxts in ``networks/`` are the unmodified deploy files of the Caffe
source distribution (BSD 2-clause, BVLC); layer names are the official ones,
so the official caffemodels load by name. Both were trained on images minus
the ILSVRC 2012 mean image; we subtract its per-channel mean, since style
transfer works at any image size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .caffe_net import CaffeBackend
from .pycaffe import import_caffe
from .zoo import require_weights

NETWORKS = Path(__file__).parent / "networks"


def ilsvrc_mean_bgr() -> np.ndarray:
    """Per-channel mean of the ILSVRC 2012 mean image shipped with pycaffe (BGR)."""
    path = Path(import_caffe().__file__).parent / "imagenet" / "ilsvrc_2012_mean.npy"
    return np.load(path).mean(axis=(1, 2)).astype(np.float32)


class BVLCBackend(CaffeBackend):
    """A BVLC model: shipped deploy prototxt, zoo weights, ILSVRC mean; the options of any Caffe model."""

    model: str
    prototxt_file: str

    def __init__(self, layers, **options):
        self.mean_bgr = ilsvrc_mean_bgr()
        super().__init__(layers, **options)

    def network(self, prototxt, **options) -> tuple[str, str]:
        if prototxt is not None:
            return super().network(prototxt)
        return (NETWORKS / self.prototxt_file).read_text(), f"built-in {self.model}"

    def default_weights(self) -> Path:
        return Path(require_weights(self.model))


class GoogLeNet(BVLCBackend):
    """GoogLeNet (BVLC, ImageNet); weights: `stylize models fetch googlenet`. Layers as the reference."""

    model = "googlenet"
    prototxt_file = "bvlc_googlenet.prototxt"
    default_content_layers = {"conv2/3x3": 2e-4, "inception_3a/output": 1 - 2e-4}
    default_style_layers = ("conv1/7x7_s2", "conv2/3x3", "inception_3a/output",
                            "inception_4a/output", "inception_5a/output")


class CaffeNet(BVLCBackend):
    """CaffeNet (BVLC's AlexNet variant, ImageNet); weights: `stylize models fetch caffenet`."""

    model = "caffenet"
    prototxt_file = "bvlc_reference_caffenet.prototxt"
    default_content_layers = ("conv4",)
    default_style_layers = ("conv1", "conv2", "conv3", "conv4", "conv5")
