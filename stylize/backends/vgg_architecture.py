"""The VGG networks (Simonyan & Zisserman) described in code: their layers, weight shapes and prototxt.

Both the backends (:mod:`stylize.backends.caffe_vgg`, which run the network) and
the zoo (:mod:`stylize.backends.zoo`, which checks that a downloaded file
holds every convolution with the right shape) read this one description.
The prototxt is generated rather than shipped so that the pooling can be
switched. Layer names are the official ones of the Oxford VGG caffemodels,
since Caffe copies weights by layer name.
"""
from __future__ import annotations

from typing import Sequence

from stylize.core import UsageError

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


def conv_shapes(blocks: Sequence[int]) -> dict[str, tuple[int, int, int, int]]:
    """``{convB_K: (out, in, 3, 3)}`` for every convolution of a VGG with ``blocks``."""
    shapes, channels_in = {}, 3
    for layer in vgg_layers(blocks):
        if layer["type"] == "Convolution":
            shapes[layer["name"]] = (layer["channels"], channels_in, 3, 3)
            channels_in = layer["channels"]
    return shapes


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
