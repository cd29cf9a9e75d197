"""VGG networks (Simonyan & Zisserman) as Caffe backends, described in code.

The prototxt is generated rather than shipped so that it can be cut after the
deepest layer a loss reads (nothing above it is computed) and so that the
pooling can be switched. Layer names are the official ones of the Oxford
VGG caffemodels, since Caffe copies weights by layer name.
"""
from __future__ import annotations

import tempfile
from typing import Sequence

from stylize.core import UsageError

from .caffe_net import CaffeBackend
from .zoo import require_weights

#: Convolutions per block; each conv has 3x3 kernels, pad 1, and an in-place ReLU.
VGG19_BLOCKS = (2, 2, 4, 4, 4)
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


def vgg_prototxt(blocks: Sequence[int], needed: Sequence[str], pooling: str = "avg") -> str:
    """Deploy prototxt that ends right after the deepest blob in ``needed``.

    Every convolution has ``lr_mult: 0``: with stylize's Caffe build this
    skips the weight gradients that ``force_backward`` would otherwise compute.
    """
    if pooling not in POOLING:
        raise UsageError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLING)}")
    layers = vgg_layers(blocks)
    tops = [layer.get("top", layer["name"]) for layer in layers]
    unknown = [name for name in needed if name not in tops]
    if unknown:
        raise UsageError(f"layer(s) {', '.join(unknown)} not in this network; "
                         f"available: {', '.join(blob_names(blocks))}")
    last = max(i for i, top in enumerate(tops) if top in needed)
    # Keep the ReLU that follows the deepest requested convolution.
    if last + 1 < len(layers) and layers[last + 1]["type"] == "ReLU":
        last += 1
    lines = ['name: "VGG"', 'input: "data"',
             "input_shape { dim: 1 dim: 3 dim: 224 dim: 224 }", "force_backward: true"]
    bottom = "data"
    for layer in layers[:last + 1]:
        top = layer.get("top", layer["name"])
        body = {
            "Convolution": (f'param {{ lr_mult: 0 }} param {{ lr_mult: 0 }} '
                            f'convolution_param {{ num_output: {layer.get("channels")} '
                            'kernel_size: 3 pad: 1 }'),
            "ReLU": "",
            "Pooling": f"pooling_param {{ pool: {POOLING[pooling]} kernel_size: 2 stride: 2 }}",
        }[layer["type"]]
        lines.append(f'layer {{ name: "{layer["name"]}" type: "{layer["type"]}" '
                     f'bottom: "{bottom}" top: "{top}" {body} }}')
        bottom = top
    return "\n".join(lines) + "\n"


class VGGBackend(CaffeBackend):
    """Shared by the VGG variants: Gatys' layers, average pooling by default."""

    blocks: Sequence[int] = VGG19_BLOCKS
    model: str = "vgg19"
    default_content_layers = ("conv4_2",)
    default_style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")

    def __init__(self, layers: Sequence[str], *, pooling: str = "avg", weights: str | None = None,
                 **options):
        text = vgg_prototxt(self.blocks, layers, pooling)
        weights = weights or require_weights(self.model)
        with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as proto:
            proto.write(text)
            proto.flush()
            super().__init__(layers, prototxt=proto.name, weights=weights, **options)


class VGG19(VGGBackend):
    """VGG19 (ImageNet), the network of Gatys et al.; weights from ``stylize models fetch vgg19``."""
