"""VGG networks (Simonyan & Zisserman) as Caffe backends, described in code.

The prototxt is generated rather than shipped so that the pooling can be
switched; like every network it is then cut after the deepest layer a loss
reads and frozen by ``prototxt.prepare``. Layer names are the official ones of the Oxford
VGG caffemodels, since Caffe copies weights by layer name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from stylize.core import UsageError

from .caffe_net import CaffeBackend

#: Convolutions per block; each conv has 3x3 kernels, pad 1, and an in-place ReLU.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG_CHANNELS = (64, 128, 256, 512, 512)
POOLING = {"avg": "AVE", "max": "MAX"}


def vgg_layers(blocks: Sequence[int]) -> list[dict]:
    """Every layer of the convolutional part, in order: name, type, output channels."""
    layers = []
    for b, (convs, channels) in enumerate(zip(blocks, VGG_CHANNELS), start=1):
        for k in range(1, convs + 1):
            layers.append({"name": f"conv{b}_{k}", "type": "Convolution", "channels": channels})
            layers.append({"name": f"relu{b}_{k}", "type": "ReLU", "top": f"conv{b}_{k}"})
        layers.append({"name": f"pool{b}", "type": "Pooling"})
    return layers


def blob_names(blocks: Sequence[int]) -> list[str]:
    """The blobs a loss may read, input to output."""
    return [layer["name"] for layer in vgg_layers(blocks) if layer["type"] != "ReLU"]


def vgg_prototxt(blocks: Sequence[int], pooling: str = "avg") -> str:
    """Deploy prototxt of the convolutional part; ``prototxt.prepare`` cuts and freezes it."""
    if pooling not in POOLING:
        raise UsageError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLING)}")
    lines = ['name: "VGG"', 'input: "data"', "input_shape { dim: 1 dim: 3 dim: 224 dim: 224 }"]
    bottom = "data"
    for layer in vgg_layers(blocks):
        top = layer.get("top", layer["name"])
        body = {
            "Convolution": (f'convolution_param {{ num_output: {layer.get("channels")} '
                            'kernel_size: 3 pad: 1 }'),
            "ReLU": "",
            "Pooling": f"pooling_param {{ pool: {POOLING[pooling]} kernel_size: 2 stride: 2 }}",
        }[layer["type"]]
        lines.append(f'layer {{ name: "{layer["name"]}" type: "{layer["type"]}" '
                     f'bottom: "{bottom}" top: "{top}" {body} }}')
        bottom = top
    return "\n".join(lines) + "\n"


class VGGBackend(CaffeBackend):
    """Shared by the VGG variants: Gatys' layers, average pooling by default.

    ``prototxt``/``weights``/``model_dir`` options replace the built-in
    network or weights, e.g. the full-precision VGG_ILSVRC_19_layers.caffemodel.
    """

    blocks: Sequence[int] = VGG19_BLOCKS
    model: str = "vgg19"
    default_content_layers = ("conv4_2",)
    default_style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

    def network(self, prototxt, pooling: str = "avg", **options) -> tuple[str, str]:
        if prototxt is not None:
            return super().network(prototxt)
        return vgg_prototxt(self.blocks, pooling), f"built-in {self.model}"

    def default_weights(self) -> Path:
        from .zoo import require_weights  # zoo reads this module's VGG structure
        return Path(require_weights(self.model))


class VGG19(VGGBackend):
    """VGG19 (ImageNet), the network of Gatys et al.; weights: `stylize models fetch vgg19`."""


class VGG16(VGGBackend):
    """VGG16 (ImageNet), lighter than VGG19; weights: `stylize models fetch vgg16`."""

    blocks = VGG16_BLOCKS
    model = "vgg16"
