"""FLOP and memory counts of Caffe networks (stylize.backends.costs), checked by hand."""
from __future__ import annotations

import pytest

from stylize.backends import costs, prototxt
from stylize.backends.caffe_vgg import VGG19
from stylize.backends.vgg_architecture import VGG19_BLOCKS, VGG_CHANNELS, vgg_prototxt

from .tinynet import PROTOTXT as TINY

# A second small network for the layer kinds the tiny one lacks: a strided,
# grouped convolution whose output feeds two layers (Caffe inserts a Split),
# a 1x1 convolution without bias, max pooling, LRN and a fully connected layer.
BRANCHY = """name: "branchy"
input: "data"
input_shape { dim: 1 dim: 4 dim: 8 dim: 8 }
force_backward: true
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
        convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2 } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b"
        convolution_param { num_output: 2 kernel_size: 1 bias_term: false } }
layer { name: "c" type: "Pooling" bottom: "a" top: "c" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "n" type: "LRN" bottom: "c" top: "n" lrn_param { local_size: 3 } }
layer { name: "f" type: "InnerProduct" bottom: "n" top: "f" inner_product_param { num_output: 3 } }
"""


def by_name(cost: costs.NetCosts) -> dict[str, costs.LayerCost]:
    return {layer.name: layer for layer in cost.layers}


def test_tiny_network_flops_and_memory_by_hand():
    net = prototxt.build_net(TINY, (1, 3, 12, 10))
    cost = costs.net_costs(net, TINY)
    layers = by_name(cost)
    # conv1: 4 outputs of 12x10, each 3 channels x 3x3 multiply-adds, plus a bias add.
    assert layers["conv1"].forward_flops == 2 * (4 * 12 * 10) * (3 * 9) + 4 * 12 * 10 == 26400
    # backward to the input only: the same GEMM, plus col2im adding 3*9 columns at 12x10 positions.
    assert layers["conv1"].backward_flops == 2 * 480 * 27 + 3 * 9 * 120 == 29160
    assert (layers["act1"].forward_flops, layers["act1"].backward_flops) == (480, 3 * 480)
    # 2x2 average pooling to 4x6x5: four adds per output, both ways.
    assert (layers["pool1"].forward_flops, layers["pool1"].backward_flops) == (120 * 4, 120 * 4)
    assert layers["conv2"].forward_flops == 2 * (5 * 6 * 5) * (4 * 9) + 150 == 10950
    assert layers["conv2"].backward_flops == 2 * 150 * 36 + 4 * 9 * 30 == 11880
    assert (layers["act2"].forward_flops, layers["act2"].backward_flops) == (150, 450)
    assert cost.forward_flops == 26400 + 480 + 480 + 10950 + 150
    assert cost.backward_flops == 29160 + 1440 + 480 + 11880 + 450
    # float32 blobs data, conv1 (in place with act1), pool1, conv2: data and diff each.
    assert cost.blob_data_bytes == cost.blob_diff_bytes == 4 * (3 * 120 + 480 + 120 + 150)
    assert cost.param_bytes == 4 * ((4 * 27 + 4) + (5 * 36 + 5))
    # im2col columns (Cin*k*k x output positions) and bias multipliers (one per output position).
    assert layers["conv1"].col_bytes == 4 * 27 * 120 and layers["conv2"].col_bytes == 4 * 36 * 30
    # The convolutions share one column buffer, as large as the largest need (conv1's).
    assert cost.col_bytes == 4 * 27 * 120
    assert cost.buffer_bytes == 4 * (27 * 120 + 120 + 30)
    # The largest array that grows with the image: conv1's output (conv1's columns are one band).
    assert cost.largest == ("blob conv1", 4 * 120)
    assert cost.uncounted == ()


def test_split_grouped_strided_1x1_max_pool_lrn_and_inner_product_by_hand():
    net = prototxt.build_net(BRANCHY, (1, 4, 8, 8))
    cost = costs.net_costs(net, BRANCHY)
    layers = by_name(cost)
    # a: 6 outputs of 4x4 (stride 2), each (4/2 groups) x 3x3 multiply-adds; col covers all 4 inputs.
    assert layers["a"].forward_flops == 2 * 96 * 18 + 96
    assert layers["a"].backward_flops == 2 * 96 * 18 + 4 * 9 * 16
    assert layers["a"].col_bytes == 4 * 4 * 9 * 16
    # b: 1x1, stride 1, no pad: Caffe skips im2col, so no column buffer and no col2im.
    assert layers["b"].forward_flops == layers["b"].backward_flops == 2 * 32 * 6
    assert layers["b"].buffer_bytes == 0
    # the Split Caffe inserted for a's two readers sums their diffs in backward.
    split = [layer for layer in cost.layers if layer.type == "Split"]
    assert len(split) == 1 and split[0].backward_flops == 96 and split[0].forward_flops == 0
    # max pooling 2x2 to 6x2x2: four compares per output; backward routes one value; argmax kept.
    assert (layers["c"].forward_flops, layers["c"].backward_flops, layers["c"].buffer_bytes) == (96, 24, 96)
    # LRN across 3 channels: scale_ kept, a padded (6+3-1) x 2x2 square plus one plane temporary.
    assert layers["n"].forward_flops == 24 * (2 * 3 + 4)
    assert layers["n"].buffer_bytes == 4 * 24
    assert layers["n"].transient_bytes == 4 * ((6 + 3 - 1) * 4 + 4) == cost.transient_bytes
    # InnerProduct 24 -> 3 with bias; backward to the input only.
    assert (layers["f"].forward_flops, layers["f"].backward_flops) == (2 * 24 * 3 + 3, 2 * 24 * 3)
    # The split's tops share a's data; each has its own diff.
    data = 4 * (4 * 64 + 96 + 32 + 24 + 24 + 3)
    assert cost.blob_data_bytes == data
    assert cost.blob_diff_bytes == data + 2 * 4 * 96


def vgg19_conv_macs(size: int, last_block: int = 5, last_conv: int = 4) -> int:
    """Multiply-adds of VGG19's convolutions, by the textbook formula."""
    total, channels, side = 0, 3, size
    for block, (convs, width) in enumerate(zip(VGG19_BLOCKS, VGG_CHANNELS), start=1):
        for k in range(1, convs + 1):
            if block == last_block and k > last_conv:
                return total
            total += side * side * width * channels * 9
            channels = width
        side //= 2
    return total


def test_vgg19_forward_flops_at_224_match_the_published_count():
    """VGG19 is 19.6 G multiply-adds at 224x224 (19.5 G convolutions + 0.12 G classifier).

    stylize counts a multiply-add as 2 FLOPs, so its convolutions are ~39 GFLOPs.
    """
    text = vgg_prototxt(VGG19_BLOCKS)
    net = prototxt.build_net(prototxt.prepare(text, ["pool5"]), (1, 3, 224, 224))
    cost = costs.net_costs(net, text)
    conv = sum(layer.forward_flops for layer in cost.layers if layer.type == "Convolution")
    macs = vgg19_conv_macs(224)
    assert conv == 2 * macs + sum(224 * 224 // 4 ** (b - 1) * w * n
                                  for b, (n, w) in enumerate(zip(VGG19_BLOCKS, VGG_CHANNELS), start=1))
    classifier_macs = 7 * 7 * 512 * 4096 + 4096 * 4096 + 4096 * 1000
    assert (macs + classifier_macs) / 1e9 == pytest.approx(19.6, abs=0.05)
    assert cost.forward_flops / 1e9 == pytest.approx(39.1, abs=0.1)
    # backward to the image: one GEMM per convolution too, plus col2im and pooling/ReLU work.
    assert cost.backward_flops == pytest.approx(cost.forward_flops, rel=0.02)


def test_vgg19_as_style_transfer_cuts_it_189_gflops_at_512(vgg19_weights):
    """The default layers (up to conv5_1) at 512x512: twice the textbook multiply-adds of their convolutions."""
    layers = sorted(set(VGG19.default_content_layers) | set(VGG19.default_style_layers))
    backend = VGG19(layers, weights=vgg19_weights)
    shape = tuple(backend.net.blobs["data"].shape)
    cost = backend.costs_at((512, 512))
    assert tuple(backend.net.blobs["data"].shape) == shape  # the backend's own net is not reshaped
    assert cost.forward_flops / 1e9 == pytest.approx(189.5, abs=0.5)
    assert cost.forward_flops == pytest.approx(2 * vgg19_conv_macs(512, 5, 1), rel=0.01)
    # Memory: convolutions lower a band of whole output rows at a time (at least 4096 columns
    # and 8 MiB of them): conv1_2's band is 8 of its 512 rows (64*9 x 8*512 floats; stock Caffe
    # holds all 512 rows, 604 MB). All share one column buffer, as large as the largest band:
    # conv4_2's, whose 64 x 64 positions are one band (4096 columns of 512*9).
    needs = [layer.col_bytes for layer in cost.layers if layer.type == "Convolution"]
    assert by_name(cost)["conv1_2"].col_bytes == 4 * 64 * 9 * 8 * 512
    assert cost.col_bytes == max(needs) == by_name(cost)["conv4_2"].col_bytes == 4 * 512 * 9 * 64 * 64
    # The largest array that grows with the image is an activation (conv1_1's 64 x 512^2), no
    # longer conv1_2's columns (what decides the largest size Caffe can run).
    assert cost.largest == ("blob conv1_1", 64 * 512 * 512)
    # Four times the pixels, four times the work and activations (up to rounding in pooling).
    big = backend.costs_at((1024, 1024))
    assert big.flops / cost.flops == pytest.approx(4, rel=0.01)
    # The column buffer is one band at both sizes (conv4_2's 64 of 128 rows at 1024 px).
    assert big.col_bytes == cost.col_bytes
    growing = [c.activation_bytes() - c.col_bytes for c in (cost, big)]
    assert growing[1] / growing[0] == pytest.approx(4, rel=0.01)


MEASURE_CAFFE = """
import json, sys
import numpy as np
from stylize.backends import costs, prototxt
from stylize.core import resident_bytes
text = sys.argv[1]
net = prototxt.build_net(text, (1, 64, 256, 256))
cost = costs.net_costs(net, text)
before = resident_bytes()
rng = np.random.default_rng(0)
net.blobs["data"].data[...] = rng.normal(size=net.blobs["data"].data.shape)
net.forward()
net.blobs["c4"].diff[...] = 1
net.backward()
print(json.dumps({"held": resident_bytes() - before, "model": cost.activation_bytes(),
                  "col": cost.col_bytes, "each": [layer.col_bytes for layer in cost.layers]}))
"""


def test_memory_model_matches_what_caffe_allocates_with_one_shared_column_buffer():
    """Four 3x3 convolutions whose whole-image columns (144 MiB each) would dominate in stock
    Caffe: stylize's build holds one shared buffer of one band (16 of 256 rows, 9 MiB).

    Measured in a fresh process: what forward + backward add to its resident memory.
    """
    import json
    import subprocess
    import sys
    layers = "".join(f'layer {{ name: "c{i}" type: "Convolution" bottom: "{"data" if i == 1 else f"c{i - 1}"}" '
                     f'top: "c{i}" param {{ lr_mult: 0 }} param {{ lr_mult: 0 }} '
                     f'convolution_param {{ num_output: 64 kernel_size: 3 pad: 1 }} }}\n'
                     for i in range(1, 5))
    text = ('name: "columns" input: "data" input_shape { dim: 1 dim: 64 dim: 256 dim: 256 }\n'
            'force_backward: true\n' + layers)
    done = subprocess.run([sys.executable, "-c", MEASURE_CAFFE, text], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    band = 4 * 64 * 9 * 16 * 256
    assert figures["each"].count(band) == 4 and figures["col"] == band
    # 5 blobs of data and diff (16 MiB each) and one band of columns: ~169 MiB, not 736.
    assert figures["held"] == pytest.approx(figures["model"], rel=0.1)
