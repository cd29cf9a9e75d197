"""The float32 L-BFGS (stylize/optimizers/lbfgs32.py) and ``lbfgs.precision``: convergence against scipy's
L-BFGS-B, bounds, the best point, its memory against tracemalloc, and the plan choosing it only when float64
does not fit the memory limit."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.optimize
from click.testing import CliRunner
from PIL import Image

from stylize import Job, events
from stylize.cli.main import cli
from stylize.core import ResourceError, UsageError
from stylize.core.planning import memory
from stylize.optimizers import lbfgs32
from stylize.optimizers.lbfgs import LBFGS
from stylize.testing import OptimizerContract


class TestFloat32(OptimizerContract):
    """The generic optimizer promises (bounds, callbacks, StopIteration, x0 untouched, memory)."""

    optimizer_class = LBFGS
    options = {"precision": "float32"}
    # What it reports to the memory estimate, in float32 images (it holds nothing else).
    state_arrays = LBFGS(precision="float32").memory_bytes(1) / 4


def rosenbrock(x):
    x64 = x.astype(np.float64).ravel()
    return float(scipy.optimize.rosen(x64)), scipy.optimize.rosen_der(x64).astype(np.float32).reshape(x.shape)


def run(precision, objective, x0, bounds, iterations):
    steps, evaluated = [], []

    def recorded(x):
        value, grad = objective(x)
        evaluated.append((value, x.copy()))
        return value, grad

    x = LBFGS(precision=precision).minimize(recorded, x0, bounds, iterations, steps.append)
    return x, steps, evaluated


def first_below(steps, value):
    return next((s.step for s in steps if s.value <= value), None)


@pytest.mark.parametrize("n", [2, 10])
def test_rosenbrock_like_scipy(n):
    """From the classic start (-1.2, 1, ...): the minimum at 1, within 1.5x scipy's iterations."""
    x0 = np.tile(np.array([-1.2, 1.0], np.float32), n // 2)
    bounds = (np.full(n, -2, np.float32), np.full(n, 2, np.float32))
    x32, steps32, _ = run("float32", rosenbrock, x0, bounds, 200)
    x64, steps64, _ = run("float64", rosenbrock, x0, bounds, 200)
    assert np.allclose(x32, 1, atol=1e-3) and np.allclose(x64, 1, atol=1e-3)
    assert first_below(steps32, 1e-6) <= 1.5 * first_below(steps64, 1e-6) + 5


def test_bounded_quadratic_like_scipy():
    """A third of the minimum lies outside the box: both end on the same constrained point, as fast."""
    rng = np.random.default_rng(0)
    shape = (1, 3, 16, 16)
    target, curvature = rng.uniform(-80, 80, shape), rng.uniform(0.1, 10, shape)

    def quadratic(x):
        d = x.astype(np.float64) - target
        return float(np.sum(curvature * d * d)), (2 * curvature * d).astype(np.float32)

    bounds = (np.full(shape, -50, np.float32), np.full(shape, 50, np.float32))
    x0 = rng.uniform(-20, 20, shape).astype(np.float32)
    optimum = quadratic(np.clip(target, -50, 50))[0]
    x32, steps32, evaluated = run("float32", quadratic, x0, bounds, 60)
    _, steps64, _ = run("float64", quadratic, x0, bounds, 60)
    assert np.abs(x32 - np.clip(target, -50, 50)).max() < 1e-2
    tolerance = optimum + 1e-6 * (steps64[0].value - optimum)
    assert first_below(steps32, tolerance) <= 1.5 * first_below(steps64, tolerance) + 5
    assert all(np.all(x >= -50) and np.all(x <= 50) for _, x in evaluated)


def test_returns_the_best_point_evaluated_and_reports_each_step():
    """A rugged objective makes the line search reject points; the result is the lowest evaluated."""
    rng = np.random.default_rng(3)
    shape = (1, 3, 8, 8)
    phase = rng.uniform(0, 6, shape)

    def rugged(x):
        x64 = x.astype(np.float64)
        value = np.sum(x64 * x64) + 30 * np.sum(np.sin(3 * x64 + phase))
        return float(value), (2 * x64 + 90 * np.cos(3 * x64 + phase)).astype(np.float32)

    bounds = (np.full(shape, -5, np.float32), np.full(shape, 5, np.float32))
    x, steps, evaluated = run("float32", rugged, rng.uniform(-4, 4, shape).astype(np.float32), bounds, 30)
    assert len(evaluated) > len(steps) + 1, "no line search ever took a second evaluation"
    assert rugged(x)[0] == min(value for value, _ in evaluated)
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert all(b.value <= a.value for a, b in zip(steps, steps[1:])), "accepted steps decrease the objective"


@pytest.mark.parametrize("iterations", [3, 25])
def test_memory_bytes_matches_what_it_allocates(iterations):
    """tracemalloc's peak over a run (an objective that allocates nothing) against ``memory_bytes``."""
    shape = (1, 3, 96, 96)
    n = int(np.prod(shape))
    rng = np.random.default_rng(0)
    target = rng.uniform(-1, 1, shape).astype(np.float32)
    curvature = rng.uniform(0.01, 10, shape).astype(np.float32)  # ill-conditioned: no early convergence
    grad, scratch = np.empty(shape, np.float32), np.empty(shape, np.float32)

    def quadratic(x):  # preallocated arrays: only the optimizer's memory is traced
        np.subtract(x, target, out=scratch)
        np.multiply(scratch, curvature, out=grad)
        value = float(np.vdot(grad, scratch))
        np.multiply(grad, 2, out=grad)
        return value, grad

    bounds = (np.full(shape, -0.5, np.float32), np.full(shape, 0.5, np.float32))
    x0 = np.zeros(shape, np.float32)
    tracemalloc.start()
    try:
        LBFGS(precision="float32").minimize(quadratic, x0, bounds, iterations, lambda r: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    counted = LBFGS(precision="float32").memory_bytes(n, iterations=iterations)
    assert counted == lbfgs32.memory_bytes(n, 10, iterations) == 4 * n * (2 * min(10, iterations) + 5)
    assert 0.9 * counted <= peak <= 1.05 * counted, f"peak {peak / (4 * n):.1f} images, counted {counted / (4 * n)}"
    assert LBFGS(precision="float32").memory_bytes(n) < LBFGS(precision="float64").memory_bytes(n) / 3


def test_bad_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="precision"):
        LBFGS(precision="float16")


# -- through the pipeline, on the tiny network ---------------------------------------------

@pytest.fixture
def tiny():
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"], threads=1)


def options(tiny_net, precision):
    prototxt, weights = tiny_net
    return {"caffe": {"prototxt": prototxt, "weights": weights}, "lbfgs": {"precision": precision}}


@pytest.fixture
def pictures(photos):
    return photos["coffee"], photos["astronaut"]


def test_a_float32_run_lowers_the_loss_as_float64_does(tiny, tiny_net, pictures):
    used = []
    original = LBFGS.minimize

    def spy(self, *args):
        used.append(self.precision)
        return original(self, *args)

    losses = {}
    LBFGS.minimize = spy
    try:
        for precision in ("float32", "float64"):
            seen = []
            Job(*pictures, length=48, iterations=20, scales=1, init="noise", seed=2,
                options=options(tiny_net, precision), **tiny).run(seen.append)
            losses[precision] = [e.loss for e in seen if isinstance(e, events.Step)]
    finally:
        LBFGS.minimize = original
    assert used == ["float32", "float64"] and len(losses["float32"]) == 20
    assert all(b <= a for a, b in zip(losses["float32"], losses["float32"][1:]))
    assert losses["float32"][-1] < 0.95 * losses["float32"][0]
    assert losses["float32"][-1] < 1.05 * losses["float64"][-1]


def estimate(tiny, tiny_net, pictures, precision, **fields):
    """A Job's plan at 320 px, where the two precisions' estimates differ by 45 MB."""
    job = Job(*pictures, length=320, iterations=12, scales=1, options=options(tiny_net, precision), **tiny, **fields)
    return job, job.estimate


def test_auto_takes_float32_exactly_when_float64_does_not_fit(tiny, tiny_net, pictures, monkeypatch):
    """Limits a quarter of the two estimates' gap around each (the process's own size, which the
    estimates include, moves a little from one network loaded to the next)."""
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "100GiB")
    wide = estimate(tiny, tiny_net, pictures, "float64", tile_size="off")[1].memory_bytes
    narrow = estimate(tiny, tiny_net, pictures, "float32", tile_size="off")[1].memory_bytes
    gap = wide - narrow
    n = 3 * 213 * 320
    assert gap == pytest.approx(LBFGS().memory_bytes(n) - lbfgs32.memory_bytes(n, 10), rel=0.05)
    for limit, expected in ((wide + gap // 4, None), (wide - gap // 4, "L-BFGS history in float32"),
                            (narrow + gap // 4, "L-BFGS history in float32")):
        monkeypatch.setenv(memory.LIMIT_VARIABLE, str(limit))
        for tile_size in ("off", "auto"):  # whole in float32 goes before any tiling in float64
            job, planned = estimate(tiny, tiny_net, pictures, "auto", tile_size=tile_size)
            assert planned.optimizer_notes == (expected,) and planned.tiles == (None,)
            assert planned.memory_bytes == pytest.approx(wide if expected is None else narrow, abs=gap / 8)
            assert job.plan.final.optimizer.precision == ("float32" if expected else "auto")
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(narrow - gap // 4))
    with pytest.raises(ResourceError, match="not enough memory"):
        estimate(tiny, tiny_net, pictures, "auto", tile_size="off")
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(wide - gap // 4))
    with pytest.raises(ResourceError):  # float64 asked for: no float32 behind the user's back
        estimate(tiny, tiny_net, pictures, "float64", tile_size="off")


def test_the_plan_line_says_float32_and_the_limit(tiny_net, tmp_path, monkeypatch, pictures):
    prototxt, weights = tiny_net
    paths = []
    for name, array in zip(("content", "style"), pictures):
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray((array * 255).astype(np.uint8)).save(paths[-1])

    def run_cli(*extra, env):
        return CliRunner().invoke(cli, [
            "run", "-c", str(paths[0]), "-s", str(paths[1]), "--backend", "caffe", "--prototxt", prototxt,
            "--weights", weights, "--content-layers", "conv2", "--style-layers", "conv1,conv2", "--length", "320",
            "--scales", "1", "-n", "3", "--checkpoint-every", "0", "--tile-size", "off", "-f",
            "-o", str(tmp_path / "out.png"), *extra], env=env, prog_name="stylize")

    monkeypatch.setenv(memory.LIMIT_VARIABLE, "100GiB")
    job = Job(*pictures, length=320, iterations=3, scales=1, tile_size="off", backend="caffe",
              content_layers=["conv2"], style_layers=["conv1", "conv2"], options=options(tiny_net, "float64"))
    wide = job.estimate.memory_bytes
    below = wide - 2 ** 25  # the float32 history of a 3-iteration run saves 88 MB here
    result = run_cli(env={memory.LIMIT_VARIABLE: str(below)})
    assert result.exit_code == 0, result.output
    assert f"320 px L-BFGS history in float32 to fit {memory.format_bytes(below)}" in result.output
    result = run_cli(env={memory.LIMIT_VARIABLE: str(wide + 2 ** 25)})
    assert result.exit_code == 0, result.output
    assert "float32" not in result.output
    result = run_cli("--set", "lbfgs.precision=float64", env={memory.LIMIT_VARIABLE: str(below)})
    assert result.exit_code == 7 and "not enough memory" in result.output
