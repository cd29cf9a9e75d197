"""stylize's own Caffe build: its BLAS, and convolution lowered a band of output rows at a time.

The banded convolution (scripts/caffe/conv_bands.hpp) replaces stock Caffe's
im2col + GEMM for ungrouped 2-D convolutions: forward, the input gradient and
the weight gradient. Each is checked here against a plain NumPy convolution,
for the geometries Caffe allows (padding, stride, dilation, rectangular
kernels) and for images large enough to need several bands.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from stylize.backends import costs
from stylize.backends.prototxt import build_net
from stylize.backends.pycaffe import import_caffe


def reference_conv(x, w, b, stride, pad, dilation):
    """Cross-correlation as Caffe defines it, in float64: x (C,H,W), w (O,C,kh,kw) -> (O,oh,ow)."""
    (c, h, wd), (o, _, kh, kw) = x.shape, w.shape
    padded = np.zeros((c, h + 2 * pad[0], wd + 2 * pad[1]))
    padded[:, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((o, oh, ow)) + b[:, None, None]
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dilation[0], j * dilation[1]
            patch = padded[:, y0:y0 + stride[0] * oh:stride[0], x0:x0 + stride[1] * ow:stride[1]]
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], patch)
    return out


# (channels, height, width, outputs, convolution_param, kernel, stride, pad, dilation)
GEOMETRIES = {
    "vgg 3x3": (3, 37, 29, 8, "kernel_size: 3 pad: 1", (3, 3), (1, 1), (1, 1), (1, 1)),
    "strided 5x5": (4, 33, 30, 6, "kernel_size: 5 stride: 2 pad: 2", (5, 5), (2, 2), (2, 2), (1, 1)),
    "dilated": (3, 25, 27, 4, "kernel_size: 3 dilation: 2 pad: 2", (3, 3), (1, 1), (2, 2), (2, 2)),
    "rectangular": (5, 21, 26, 4, "kernel_h: 3 kernel_w: 1 pad_h: 1 stride_w: 2",
                    (3, 1), (1, 2), (1, 0), (1, 1)),
    "caffenet conv1": (3, 67, 71, 5, "kernel_size: 11 stride: 4", (11, 11), (4, 4), (0, 0), (1, 1)),
    # 64 channels at 100x90: bands of 46 rows (kMinColumns), so three bands
    "several bands": (64, 100, 90, 4, "kernel_size: 3 pad: 1", (3, 3), (1, 1), (1, 1), (1, 1)),
}


def conv_net(c, h, w, outputs, param, frozen):
    lr = "param { lr_mult: 0 } param { lr_mult: 0 }" if frozen else ""
    text = (f'name: "t" input: "data" input_shape {{ dim: 1 dim: {c} dim: {h} dim: {w} }} force_backward: true\n'
            f'layer {{ name: "c" type: "Convolution" bottom: "data" top: "c" {lr} '
            f'convolution_param {{ num_output: {outputs} {param} }} }}\n')
    return build_net(text)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_banded_convolution_matches_numpy_forward_input_and_weight_gradients(name):
    c, h, w, outputs, param, kernel, stride, pad, dilation = GEOMETRIES[name]
    rng = np.random.default_rng(0)
    net = conv_net(c, h, w, outputs, param, frozen=False)
    weights, bias = (rng.standard_normal(blob.data.shape) for blob in net.params["c"])
    net.params["c"][0].data[...], net.params["c"][1].data[...] = weights, bias
    x = rng.standard_normal((c, h, w))
    net.blobs["data"].data[0] = x
    net.forward()
    expected = reference_conv(x, weights, bias, stride, pad, dilation)
    assert net.blobs["c"].data.shape[1:] == expected.shape
    scale = np.abs(expected).max()
    assert np.abs(net.blobs["c"].data[0] - expected).max() < 1e-5 * scale

    # Backward of L = <g, conv(x)>. The convolution is linear in x and in W, so its gradients
    # are the adjoints: <dL/dx, p> = <g, conv_W(p)> and <dL/dW, V> = <g, conv_V(x)> (no bias)
    # for any probe p and kernel V, each side computed independently.
    g = rng.standard_normal(expected.shape)
    net.blobs["c"].diff[0] = g
    net.backward()
    dx, dw = net.blobs["data"].diff[0].astype(np.float64), net.params["c"][0].diff.astype(np.float64)
    no_bias = np.zeros_like(bias)
    for _ in range(3):
        probe = rng.standard_normal(x.shape)
        assert_same_sum(np.vdot(dx, probe), np.vdot(g, reference_conv(probe, weights, no_bias, stride, pad, dilation)),
                        np.linalg.norm(dx) * np.linalg.norm(probe))
    for _ in range(3):
        v = rng.standard_normal(weights.shape)
        assert_same_sum(np.vdot(dw, v), np.vdot(g, reference_conv(x, v, no_bias, stride, pad, dilation)),
                        np.linalg.norm(dw) * np.linalg.norm(v))


def assert_same_sum(ours, reference, scale):
    """Two dot products agree to float32 precision, relative to the size of their terms
    (random probes make the sums themselves small, so a plain relative error is meaningless)."""
    assert abs(ours - reference) < 1e-5 * scale, (ours, reference, scale)


def test_frozen_banded_convolution_gives_the_same_input_gradient():
    """lr_mult 0 skips the weight GEMM; the input gradient is the same numbers."""
    c, h, w, outputs, param, *_ = GEOMETRIES["several bands"]
    grads = []
    for frozen in (False, True):
        net = conv_net(c, h, w, outputs, param, frozen)
        for blob in net.params["c"]:
            blob.data[...] = np.random.default_rng(2).standard_normal(blob.data.shape)
        net.blobs["data"].data[...] = np.random.default_rng(3).standard_normal(net.blobs["data"].data.shape)
        net.forward()
        net.blobs["c"].diff[...] = np.random.default_rng(1).standard_normal(net.blobs["c"].diff.shape)
        net.backward()
        grads.append(net.blobs["data"].diff.copy())
        if frozen:
            assert not net.params["c"][0].diff.any()
    np.testing.assert_array_equal(grads[0], grads[1])


def test_band_sizes_in_the_memory_model_follow_the_build():
    """costs._band_columns mirrors conv_bands::band_rows (kMinColumns = 4096, kBandBytes = 8 MiB)."""
    assert costs.BAND_BYTES == 8 << 20
    # VGG19's conv1_2 at 512 px: 576 x 512 per row; 8 rows give 4096 columns (9 MiB of columns).
    assert costs._band_columns(576, (512, 512)) == 576 * 8 * 512
    # conv2_1 at 256 px: 16 rows (4096 columns) hold 9 MiB, more than the 8 MiB floor's 14 rows.
    assert costs._band_columns(576, (256, 256)) == 576 * 16 * 256
    # a shallow layer of a wide image: the 8 MiB floor decides (27 x 4000 per row -> 19 rows).
    assert costs._band_columns(27, (3000, 4000)) == 27 * 19 * 4000
    # a small output is one band: the whole image.
    assert costs._band_columns(4608, (32, 32)) == 4608 * 32 * 32


def test_caffe_runs_on_the_pypi_openblas_with_kernels_for_this_cpu():
    """Debian 12's OpenBLAS falls back to generic SSE3 kernels ("Prescott") on CPUs newer than it."""
    import_caffe()
    ours = [info for info in threadpool_info()
            if info["internal_api"] == "openblas" and "scipy_openblas32" in info["filepath"]]
    assert ours, [info["filepath"] for info in threadpool_info()]
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    if "avx2" in flags:
        assert ours[0]["architecture"] not in ("Prescott", "Core2", "Nehalem", "Atom"), ours[0]
