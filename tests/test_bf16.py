"""`--precision bf16`: the sgemm shim Caffe binds to, exact when off, bf16-close when on; gradients; a run."""
from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylize.backends import bf16
from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.pycaffe import import_caffe
from stylize.core import UsageError
from stylize.core.io.images import load_image, save_image
from stylize.testing import gradient_errors

from .test_backend import linear_probe

built = pytest.mark.skipif(not bf16.LIBRARY.is_file(), reason="make setup builds the bf16 GEMM library")
needs_cpu = pytest.mark.skipif(not bf16.cpu_has_bf16(), reason="this CPU has no AVX512_BF16 or AMX")
#: bfloat16 keeps 8 significant bits: one rounding is at most 2^-9 relative.
BF16_EPS = 2.0 ** -8

F = ctypes.POINTER(ctypes.c_float)
ROW, COL, NO, TRANS = 101, 102, 111, 112


def sgemm(library, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    fn = library.scipy_cblas_sgemm
    fn.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, F, ctypes.c_int, F, ctypes.c_int, ctypes.c_float, F,
                                        ctypes.c_int]
    fn(order, ta, tb, m, n, k, alpha, a.ctypes.data_as(F), lda, b.ctypes.data_as(F), ldb, beta,
       c.ctypes.data_as(F), ldc)


def stored(rng, rows, cols, ld, order):
    """A matrix of rows x cols in a buffer with leading dimension ld (padding filled with NaN)."""
    shape = (rows, ld) if order == ROW else (cols, ld)
    buffer = np.full(shape, np.nan, dtype=np.float32)
    view = buffer[:, :cols] if order == ROW else buffer[:, :rows]
    view[...] = rng.standard_normal(view.shape)
    matrix = view if order == ROW else view.T
    return buffer, matrix


def case(order, ta, tb, alpha, beta, seed=0, m=37, n=29, k=23, pad=5):
    """Operands of C = alpha op(A) op(B) + beta C with padded leading dimensions, and numpy's answer."""
    rng = np.random.default_rng(seed)
    a_rows, a_cols = (k, m) if ta == TRANS else (m, k)
    b_rows, b_cols = (n, k) if tb == TRANS else (k, n)
    a_buf, a = stored(rng, a_rows, a_cols, (a_cols if order == ROW else a_rows) + pad, order)
    b_buf, b = stored(rng, b_rows, b_cols, (b_cols if order == ROW else b_rows) + pad, order)
    c_buf, c = stored(rng, m, n, (n if order == ROW else m) + pad, order)
    if beta == 0:
        c[...] = np.nan  # BLAS: beta == 0 means C is not read
    op_a = a.T if ta == TRANS else a
    op_b = b.T if tb == TRANS else b
    base = 0 if beta == 0 else beta * c.astype(np.float64)
    want = alpha * (op_a.astype(np.float64) @ op_b.astype(np.float64)) + base
    args = (order, ta, tb, m, n, k, alpha, a_buf, a_buf.shape[1], b_buf, b_buf.shape[1], beta, c_buf,
            c_buf.shape[1])
    return args, c, c_buf, want, np.abs(op_a) @ np.abs(op_b)


CASES = [(order, ta, tb, alpha, beta) for order in (ROW, COL) for ta in (NO, TRANS) for tb in (NO, TRANS)
         for alpha, beta in ((1.0, 0.0), (0.5, 1.0), (-2.0, 0.25))]


@pytest.fixture
def shim(monkeypatch):
    library = bf16.library()
    if library is None:
        pytest.skip(f"bf16 library not loaded: {bf16.problem()}")
    monkeypatch.setattr(bf16, "MIN_FLOPS", 0.0)  # every product, however small
    yield library
    bf16.use("fp32")


@built
@pytest.mark.parametrize("order,ta,tb,alpha,beta", CASES)
def test_off_forwards_to_openblas_bit_for_bit(shim, order, ta, tb, alpha, beta):
    real = ctypes.CDLL(str(bf16.openblas_library()))  # its own scipy_cblas_sgemm, not the shim's
    bf16.use("fp32")
    args, c, c_buf, want, _ = case(order, ta, tb, alpha, beta)
    expected = c_buf.copy()
    sgemm(real, *args[:12], expected, args[13])
    before = bf16.counts()
    sgemm(shim, *args)
    assert np.array_equal(c_buf, expected, equal_nan=True)  # padding untouched too
    after = bf16.counts()
    assert after["calls"] == before["calls"] + 1 and after["bf16_calls"] == before["bf16_calls"]
    assert np.allclose(c, want, rtol=1e-4, atol=1e-3)


@built
@needs_cpu
@pytest.mark.parametrize("order,ta,tb,alpha,beta", CASES)
def test_on_matches_numpy_within_bf16_rounding(shim, order, ta, tb, alpha, beta):
    bf16.use("bf16")
    args, c, c_buf, want, magnitude = case(order, ta, tb, alpha, beta)
    padding = c_buf.copy()
    before = bf16.counts()["bf16_calls"]
    sgemm(shim, *args)
    assert bf16.counts()["bf16_calls"] == before + 1
    # Each product's two roundings: at most 2 * 2^-9 of |A||B| per term, summed in float32.
    error = np.abs(c - want)
    assert np.all(error <= abs(alpha) * BF16_EPS * magnitude + 1e-4), error.max()
    assert error.max() > 0  # it did round: not the fp32 path
    inside = np.zeros(c_buf.shape, bool)
    (inside[:, :c.shape[1]] if order == ROW else inside[:, :c.shape[0]])[...] = True
    assert np.array_equal(c_buf[~inside], padding[~inside], equal_nan=True)  # beyond ldc: untouched


@built
def test_caffe_binds_its_sgemm_to_the_shim(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv2"], prototxt=prototxt, weights=weights)
    assert "caffe" in sys.modules and bf16.library() is not None
    before = bf16.counts()["calls"]
    backend.forward(np.zeros((1, 3, 12, 10), np.float32), ["conv2"])
    assert bf16.counts()["calls"] >= before + 2  # conv1 and conv2, through the shim


@built
@needs_cpu
def test_tiny_network_gradient_in_bf16(tiny_net, shim):
    prototxt, weights = tiny_net
    exact = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights)
    rounded = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights, precision="bf16")
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 10)).astype(np.float32)
    _, grad32 = linear_probe(exact, ["conv1", "conv2"], x)
    before = bf16.counts()["bf16_calls"]
    loss, grad16 = linear_probe(rounded, ["conv1", "conv2"], x)
    assert bf16.counts()["bf16_calls"] > before
    assert not np.array_equal(grad16, grad32)
    assert np.linalg.norm(grad16 - grad32) < 0.02 * np.linalg.norm(grad32)
    # Finite differences of the bf16 loss itself: rounding makes it a little rough, hence the loose bounds.
    errors = gradient_errors(loss, x, grad16, eps=5e-2, count=30)
    assert np.median(errors) < 0.03 and errors.max() < 0.2, np.sort(errors)


@built
@needs_cpu
@pytest.mark.slow
def test_vgg19_gradient_in_bf16_against_fp32(vgg19_weights, photos):
    from stylize.backends.caffe_vgg import VGG19
    layers = ["conv1_1", "conv3_1", "conv4_2", "conv5_1"]
    image = photos["chelsea"][100:228, 150:278]
    exact = VGG19(layers, weights=vgg19_weights)
    rounded = VGG19(layers, weights=vgg19_weights, precision="bf16")
    x = exact.preprocess(image)
    loss, grad32 = linear_probe(exact, layers, x)
    before = bf16.counts()["bf16_calls"]
    _, grad16 = linear_probe(rounded, layers, x)
    assert bf16.counts()["bf16_calls"] > before  # with the default size threshold
    cosine = np.vdot(grad16, grad32) / np.linalg.norm(grad16) / np.linalg.norm(grad32)
    assert cosine > 0.99 and np.linalg.norm(grad16 - grad32) < 0.1 * np.linalg.norm(grad32)
    # What L-BFGS needs: along the bf16 gradient, the true (fp32) objective's slope is what it claims.
    # (The bf16 loss itself is too rough for finite differences here: its input rounds to 8 bits.)
    direction = grad16 / np.linalg.norm(grad16)
    slope = (loss(x + 4 * direction) - loss(x - 4 * direction)) / 8
    assert slope == pytest.approx(np.vdot(grad16, direction), rel=0.03)


def test_refused_in_one_line_where_the_cpu_lacks_it(monkeypatch):
    monkeypatch.setattr(bf16, "cpu_has_bf16", lambda: False)
    with pytest.raises(UsageError, match=r"^--precision bf16: this CPU has no bfloat16 matrix instructions"):
        bf16.check("bf16")
    bf16.check("fp32")  # fp32 needs nothing


def test_refused_before_any_image_is_read(monkeypatch, tiny_net):
    from stylize.core.request.settings import Settings
    monkeypatch.setattr(bf16, "cpu_has_bf16", lambda: False)
    prototxt, weights = tiny_net
    settings = Settings(backend="caffe", content_layers=["conv2"], style_layers=["conv1"],
                        options={"caffe": {"prototxt": prototxt, "weights": weights, "precision": "bf16"}})
    with pytest.raises(UsageError, match="precision bf16"):
        settings.validate()
    settings.options["caffe"]["precision"] = "fp16"
    with pytest.raises(UsageError, match="choose one of auto, fp32, bf16"):
        settings.validate()


@built
@needs_cpu
def test_run_with_precision_bf16(tiny_net, photos, tmp_path):
    """The real command; at 320 px the tiny net's products pass the size threshold, so bf16 changes the image."""
    prototxt, weights = tiny_net
    save_image(photos["coffee"], tmp_path / "content.png")
    save_image(photos["astronaut"], tmp_path / "style.png")
    stylize = Path(sys.executable).with_name("stylize")
    outputs = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.png"
        done = subprocess.run([str(stylize), "run", "-c", str(tmp_path / "content.png"), "-s",
                               str(tmp_path / "style.png"), "-o", str(out), "-q", "--backend", "caffe",
                               "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
                               "--style-layers", "conv1,conv2", "--length", "320", "--iterations", "8",
                               "--scales", "1", "--threads", "1", "--precision", precision],
                              capture_output=True, text=True, timeout=300, env={**os.environ})
        assert done.returncode == 0, done.stderr
        outputs[precision] = load_image(out)
    difference = np.abs(outputs["bf16"] - outputs["fp32"])
    assert difference.max() > 0  # bf16 really ran
    assert difference.mean() < 0.02  # and it is the same picture


@built
@needs_cpu
def test_precision_is_per_thread(shim):
    """A job in bf16 on one thread leaves another thread's products exact (jobs may run side by side)."""
    import threading
    real = ctypes.CDLL(str(bf16.openblas_library()))
    args, c, c_buf, want, _ = case(ROW, NO, NO, 1.0, 0.0, seed=3)
    expected = c_buf.copy()
    sgemm(real, *args[:12], expected, args[13])
    rounded = c_buf.copy()

    def worker():
        bf16.use("bf16")
        sgemm(shim, *args[:12], rounded, args[13])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    sgemm(shim, *args)  # this thread never asked for bf16
    assert np.array_equal(c_buf, expected, equal_nan=True)
    assert not np.array_equal(rounded, expected, equal_nan=True)


@pytest.fixture
def auto_unpinned(monkeypatch):
    """``auto`` as users get it (the suite pins it to fp32 for exact gradients: conftest)."""
    monkeypatch.setattr(bf16, "AUTO", "bf16")
    monkeypatch.setattr(bf16, "_auto", None)
    yield
    bf16.use("fp32")


def test_auto_is_fp32_below_the_size_and_where_bf16_cannot_run(auto_unpinned, monkeypatch):
    assert bf16.resolve("fp32", 10 ** 7) == "fp32" and bf16.resolve("bf16", 1) == "bf16"  # given: as given
    assert bf16.resolve("auto", bf16.AUTO_MIN_PIXELS - 1) == "fp32"
    monkeypatch.setattr(bf16, "cpu_has_bf16", lambda: False)
    assert bf16.resolve("auto", 10 ** 7) == "fp32"  # no refusal: auto falls back


@built
@needs_cpu
def test_auto_runs_large_evaluations_in_bf16_and_small_ones_in_fp32(tiny_net, auto_unpinned):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv2"], prototxt=prototxt, weights=weights, precision="auto")
    side = int(np.ceil(np.sqrt(bf16.AUTO_MIN_PIXELS)))
    for shape, in_bf16 in (((1, 3, 64, 64), False), ((1, 3, side, side), True)):
        before = bf16.counts()["bf16_calls"]
        backend.forward(np.ones(shape, np.float32), ["conv2"])
        backend.backward({"conv2": np.ones_like(backend.net.blobs["conv2"].data[0])})
        assert (bf16.counts()["bf16_calls"] > before) == in_bf16, shape
    default = CaffeBackend(["conv2"], prototxt=prototxt, weights=weights)  # auto unless told otherwise
    assert default.arithmetic((side, side)) == "bf16" and default.arithmetic((64, 64)) == ""
    assert CaffeBackend(["conv2"], prototxt=prototxt, weights=weights, precision="fp32").arithmetic((side, side)) == ""
