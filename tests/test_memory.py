"""Memory: the estimate of a run's peak, the refusal of runs that cannot fit, a lean L-BFGS."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from stylize.backends.caffe_vgg import VGG19
from stylize.core.planning import memory
from stylize.core.errors import ImageError, ResourceError, UsageError
from stylize.core.request.settings import Settings
from stylize.optimizers.lbfgs import LBFGS, _bound_pairs

IMAGES = Path(__file__).parent.parent / "examples" / "images"
CHILD = "import sys; from stylize.cli.main import cli; cli(sys.argv[1:], prog_name='stylize')"


@pytest.fixture(scope="module")
def vgg19(vgg19_weights):
    layers = sorted(set(VGG19.default_content_layers) | set(VGG19.default_style_layers))
    return VGG19(layers, weights=vgg19_weights)


# -- the estimate -----------------------------------------------------------------

def test_estimate_grows_with_the_image_like_its_area(vgg19):
    sizes = [(64, 64), (128, 96), (128, 128), (256, 256), (512, 512), (1024, 1024), (2048, 1536)]
    estimates = [vgg19.estimate_peak_bytes(shape) for shape in sizes]
    assert all(a < b for a, b in zip(estimates, estimates[1:]))
    # Beyond what the process already holds and the column buffer (one band of rows, the same
    # 4096 x 4608 floats of conv4_2 at both sizes), memory follows the pixel count.
    base = vgg19._baseline_bytes
    cols = [vgg19.costs_at(sizes[i]).col_bytes for i in (4, 5)]
    assert cols[0] == cols[1] == 4 * 4096 * 4608
    assert (estimates[5] - base - cols[1]) / (estimates[4] - base - cols[0]) == pytest.approx(4, rel=0.02)


MEASURE = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from skimage import data
    from stylize.core.planning import memory
    from stylize.core.io.images import load_image, resize
    from stylize.core.run.pipeline import transfer
    from stylize.core.request.settings import Settings
    size = int(sys.argv[1])
    content = resize(data.astronaut().astype(np.float32) / 255.0, (size, size))
    style = resize(load_image(sys.argv[2]), (size, size))
    settings = Settings(length=size, iterations=1, scales=1)
    seen = {}
    os.environ[memory.LIMIT_VARIABLE] = "1T"  # the check must run (and pass) to give its estimate
    check = memory.check_fits
    def spy(*args, **kwargs):
        seen["estimate"] = check(*args, **kwargs)
        return seen["estimate"]
    memory.check_fits = spy
    transfer(content, style, settings)
    print(json.dumps({"estimate": seen["estimate"],
                      "peak": memory.peak_resident_bytes()}))
""")


def test_a_child_process_peak_is_its_own():
    """ru_maxrss would report this test runner's size for the child (Linux keeps it across exec)."""
    held = np.ones(2 ** 29 // 8)  # 512 MiB resident here
    done = subprocess.run([sys.executable, "-c", "from stylize.core.planning import memory; print(memory.peak_resident_bytes())"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert memory.peak_resident_bytes() >= held.nbytes
    assert int(done.stdout) < held.nbytes / 4


def test_estimate_is_close_to_the_measured_peak_of_a_real_run(vgg19_weights):
    """VGG19 at 256x256, in a fresh process so that its peak is the run's (bench/speed.py does 256-1024).

    Measured 1.03 (bench/speed.py: 0.99-1.03 at 256-1024 px); with a Caffe build whose
    convolutions keep one column buffer each, the estimate is about 0.7 of the peak. Not
    smaller: OpenBLAS sometimes allocates its 32 MiB per-thread buffers only during the
    run, 64 MiB that were 15% of a 192 px run's peak (seen once: 0.85).
    """
    done = subprocess.run([sys.executable, "-c", MEASURE, "256", str(IMAGES / "the_scream.jpg")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["estimate"] == pytest.approx(figures["peak"], rel=0.15)


# -- what the machine has -----------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1073741824", 2 ** 30), ("512M", 512 * 2 ** 20), ("512MiB", 512 * 2 ** 20), ("1.5 GB", 3 * 2 ** 29),
    ("4g", 4 * 2 ** 30), ("64k", 65536),
])
def test_memory_sizes_are_read_in_bytes_or_binary_units(text, expected):
    assert memory.parse_bytes(text) == expected


def test_the_limit_comes_from_the_environment_or_the_machine(monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "3GiB")
    assert memory.memory_limit() == (3 * 2 ** 30, f"the limit {memory.LIMIT_VARIABLE} sets")
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "off")
    assert memory.memory_limit() is None
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "lots")
    with pytest.raises(UsageError, match=memory.LIMIT_VARIABLE):
        memory.memory_limit()
    monkeypatch.delenv(memory.LIMIT_VARIABLE)
    limit, _ = memory.memory_limit()
    assert memory.resident_bytes() < limit  # MemAvailable plus what this process holds


class QuadraticBackend:
    """A stand-in whose peak is 100 MB plus 1 kB per pixel; it takes images of ``smallest`` px and more."""

    def __init__(self, smallest: int = 1):
        self.smallest = smallest

    def estimate_peak_bytes(self, shape):
        if min(shape) < self.smallest:
            raise ImageError(f"{shape} too small")
        return 100_000_000 + 1000 * shape[0] * shape[1]


def test_refusal_names_the_estimate_the_limit_and_the_largest_length_that_fits(monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "400MB")
    limit = 400 * 2 ** 20
    settings = Settings(optimizer="adam")  # no state estimate: the backend's figure alone
    with pytest.raises(ResourceError) as caught:
        memory.check_fits(QuadraticBackend(), settings, (768, 1024, 3), [(600, 800, 3)])
    message = str(caught.value)
    assert caught.value.exit_code == 7 and "\n" not in message
    assert "1024x768" in message and "845 MiB" in message and "400 MiB" in message
    length = int(re.search(r"--length (\d+) would fit", message).group(1))
    # 3:4 images: the largest multiple of 32 whose estimate is under the limit.
    fits = [L for L in range(64, 1024, 32) if 100_000_000 + 1000 * round(L * 0.75) * L <= limit]
    assert length == max(fits)
    # A run that fits passes silently; so does a backend that cannot estimate.
    memory.check_fits(QuadraticBackend(), settings, (length * 3 // 4, length, 3), [(600, 800, 3)])
    memory.check_fits(object(), settings, (4096, 4096, 3), [(4096, 4096, 3)])
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "64MiB")  # below what the stand-in always needs
    with pytest.raises(ResourceError, match=r"no --length from 64 px up would fit"):
        memory.check_fits(QuadraticBackend(), settings, (768, 1024, 3), [(600, 800, 3)])
    # Lengths too small for the network are no answer, however little memory they take.
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "120MB")  # fits up to 160 px wide at 3:4
    with pytest.raises(ResourceError, match=r"--length 160 would fit"):
        memory.check_fits(QuadraticBackend(smallest=100), settings, (768, 1024, 3), [(600, 800, 3)])
    with pytest.raises(ResourceError, match=r"no --length from 64 px up would fit"):
        memory.check_fits(QuadraticBackend(smallest=150), settings, (768, 1024, 3), [(600, 800, 3)])


def test_lbfgs_state_counts_in_the_estimate(monkeypatch):
    backend = QuadraticBackend()
    lean = memory.estimate_run_bytes(backend, object(), (512, 512), [(512, 512)])
    with_lbfgs = memory.estimate_run_bytes(backend, LBFGS(), (512, 512), [(512, 512)])
    assert with_lbfgs - lean == LBFGS().memory_bytes(3 * 512 * 512) > 2 * 10 * 8 * 3 * 512 * 512
    # the larger of content and style images sets the network's share
    assert memory.estimate_run_bytes(backend, object(), (256, 256), [(512, 512)]) == lean


def test_cli_refuses_a_run_that_cannot_fit_in_one_line_and_writes_nothing(tmp_path, vgg19_weights):
    out = tmp_path / "out" / "result.png"
    args = ["run", "-c", str(IMAGES / "astronaut.jpg"), "-s", str(IMAGES / "the_scream.jpg"),
            "-o", str(out), "--length", "512", "-n", "1", "--scales", "1", "-q"]
    # 600 MiB: a 512 px run needs 698 MiB even in float32 L-BFGS and 2x2 tiles (700 MiB fit it).
    env = {**os.environ, memory.LIMIT_VARIABLE: "600MiB"}
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 7, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stylize: error: not enough memory"), done.stderr
    assert "512x512 px" in lines[0] and "600 MiB" in lines[0]
    assert not out.exists() and not any(tmp_path.rglob("*.png"))
    # The length it proposes does fit (the check passes and the run completes).
    length = int(re.search(r"--length (\d+) would fit", lines[0]).group(1))
    assert 128 <= length < 512
    args[args.index("--length") + 1] = str(length)
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.is_file()


def test_sizes_caffe_would_abort_on_are_refused_before_it_sees_them(vgg19, tmp_path):
    """Caffe aborts the process (SIGABRT) on an array of 2^31 values: VGG's conv1_1 activations near
    5790 px (stock Caffe's whole-image im2col columns of conv1_2 reached it near 1930 px; stylize's
    build lowers a band of rows at a time, scripts/caffe/conv_bands.hpp)."""
    vgg19.check_size((5600, 5600))
    with pytest.raises(ResourceError, match=r"6000x6000 px image is too large for Caffe: blob conv1_1 "
                                            r".* --length 5632 would fit"):
        vgg19.check_size((6000, 6000))
    with pytest.raises(ResourceError, match="too large for Caffe"):
        vgg19.estimate_peak_bytes((6000, 6000))
    # also when the memory check is off: the run stops with exit code 7, not a crash
    out = tmp_path / "out.png"
    done = subprocess.run([sys.executable, "-c", CHILD, "run", "-c", str(IMAGES / "astronaut.jpg"),
                           "-s", str(IMAGES / "the_scream.jpg"), "-o", str(out), "--length", "6000",
                           "--scales", "1", "-n", "1", "-q"],
                          capture_output=True, text=True, env={**os.environ, memory.LIMIT_VARIABLE: "off"},
                          timeout=300)
    assert done.returncode == 7 and "too large for Caffe" in done.stderr, done.stderr
    assert not out.exists()


# -- L-BFGS: float64 only inside scipy, no per-variable Python objects --------------

def test_lbfgs_takes_the_same_steps_as_scipy_minimize_with_bounds():
    rng = np.random.default_rng(0)
    shape = (1, 3, 8, 6)
    target = rng.normal(0, 2, shape).astype(np.float32)
    scale = rng.uniform(0.5, 2, shape).astype(np.float32)
    lower = np.broadcast_to(np.array([-1, -2, -0.5], np.float32).reshape(1, 3, 1, 1), shape)
    upper = np.broadcast_to(np.array([1, 0.5, 2], np.float32).reshape(1, 3, 1, 1), shape)

    def objective(x):
        diff = x - target
        return float(np.sum(scale * diff ** 4 + diff ** 2)), (4 * scale * diff ** 3 + 2 * diff).astype(np.float32)

    ours = []
    x = LBFGS().minimize(objective, np.zeros(shape, np.float32), (lower, upper), 15,
                         lambda result: ours.append(result.value))

    reference = []

    def fun(v):
        value, grad = objective(v.astype(np.float32).reshape(shape))
        return value, grad.astype(np.float64).ravel()

    result = scipy.optimize.minimize(
        fun, np.zeros(target.size), jac=True, method="L-BFGS-B",
        bounds=scipy.optimize.Bounds(lower.ravel().astype(np.float64), upper.ravel().astype(np.float64)),
        callback=lambda intermediate_result: reference.append(float(intermediate_result.fun)),
        options={"maxiter": 15, "maxfun": 50, "maxcor": 10, "ftol": 0.0, "gtol": 0.0})
    assert ours == pytest.approx(reference, rel=1e-6)
    assert x.dtype == np.float32 and x.shape == shape
    np.testing.assert_allclose(x.ravel(), result.x, atol=1e-5)
    assert (x >= lower).all() and (x <= upper).all()


def test_bounds_reach_scipy_as_a_few_shared_pairs():
    shape = (1, 3, 40, 50)
    lower = np.broadcast_to(np.array([-103.9, -116.8, -123.7], np.float32).reshape(1, 3, 1, 1), shape)
    pairs = _bound_pairs(lower, lower + 255, shape)
    assert len(pairs) == lower.size
    assert len({id(pair) for pair in pairs}) == 3
    assert pairs[0] == (float(lower[0, 0, 0, 0]), float(lower[0, 0, 0, 0] + 255))
    assert pairs[-1] == (float(lower[0, 2, 0, 0]), float(lower[0, 2, 0, 0] + 255))
    # any bounds work, also one pair per variable
    rng = np.random.default_rng(1)
    low = rng.normal(size=shape).astype(np.float32)
    pairs = _bound_pairs(low, low + 1, shape)
    assert [p[0] for p in pairs] == [float(v) for v in low.ravel()]
