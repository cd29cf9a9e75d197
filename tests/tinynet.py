"""A tiny smooth Caffe network written with pycaffe, for exact gradient checks.

Smooth activations and average pooling have no kinks, so finite differences
agree with back-propagation everywhere (ReLU/max-pool disagree at a few points).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stylize.backends.prototxt import build_net

PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 10 }
force_backward: true
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 0 } param { lr_mult: 0 }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "act1" type: "TanH" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        param { lr_mult: 0 } param { lr_mult: 0 }
        convolution_param { num_output: 5 kernel_size: 3 pad: 1 } }
layer { name: "act2" type: "Sigmoid" bottom: "conv2" top: "conv2" }
"""


def write_tiny_net(folder: Path, seed: int = 0) -> tuple[str, str]:
    """Write prototxt and a caffemodel with random weights; return both paths."""
    prototxt = folder / "tiny.prototxt"
    prototxt.write_text(PROTOTXT)
    net = build_net(PROTOTXT)
    rng = np.random.default_rng(seed)
    for params in net.params.values():
        for blob in params:
            blob.data[...] = rng.normal(0, 0.3, blob.data.shape)
    weights = folder / "tiny.caffemodel"
    net.save(str(weights))
    return str(prototxt), str(weights)
