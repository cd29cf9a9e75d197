"""bench/layers.py on the tiny network: every layer of the net timed, each in its group, shares adding up.

The figures themselves come from running the bench on VGG19 (bench/README.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import layers  # noqa: E402

from stylize.backends.caffe_net import CaffeBackend  # noqa: E402


def test_every_layer_is_timed_forward_and_backward_and_the_groups_add_up(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights)
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 10)).astype(np.float32)
    backend.forward(x, backend.layers)
    timing = layers.time_layers(backend.net, repeat=3)

    assert [row["name"] for row in timing["layers"]] == list(backend.net._layer_names)
    assert [row["type"] for row in timing["layers"]] == ["Input", "Convolution", "TanH", "Pooling",
                                                      "Convolution", "Sigmoid"]
    for row in timing["layers"]:
        for part in ("forward", "backward"):
            assert len(row[part]["runs"]) == 3 and all(s > 0 for s in row[part]["runs"])
    assert all(len(timing["whole"][part]["runs"]) == 3 for part in ("forward", "backward"))
    assert np.abs(backend.net.blobs["data"].diff).sum() > 0  # the passes ran down to the input

    summary = layers.summarize(timing)
    groups = summary["groups"]
    assert {g: groups[g]["layers"] for g in groups} == {"Convolution": 2, "ReLU": 0, "Pooling": 1, "other": 3}
    assert abs(sum(g["share"] for g in groups.values()) - 1.0) < 1e-9
    assert summary["not_convolution_share"] == 1.0 - groups["Convolution"]["share"]
    assert summary["relu_backward_over_forward"] is None  # no ReLU in this net: no ratio, no division by zero
    assert summary["layers_total_s"] == sum(r[p]["median_s"] for r in timing["layers"] for p in ("forward", "backward"))
