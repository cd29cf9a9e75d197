"""The Adam optimizer: toy problems, its options through Settings and the CLI, the real network.

The general optimizer promises (callbacks, StopIteration, bounds, unknown
options) are also checked by ``OptimizerContract`` in tests/test_contracts.py.
"""
from __future__ import annotations


import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.backends.caffe_vgg import VGG19
from stylize.cli.main import cli
from stylize.core import UsageError, plugins
from stylize.core.io.images import fit_long_side, resize
from stylize.core.evaluation.objective import build_losses, make_backend, make_objective
from stylize.core.run.pipeline import transfer
from stylize.core.request.settings import Settings
from stylize.optimizers.adam import Adam

TARGET = np.array([[3.0, -2.0, 0.5, 0.0]], np.float32)
BOUNDS = (np.full_like(TARGET, -1), np.full_like(TARGET, 1))


def quadratic(x):
    d = x - TARGET
    return float(np.vdot(d, d)), 2 * d


def test_is_the_registered_adam():
    assert plugins.load("stylize.optimizers", "adam") is Adam


def test_converges_to_the_constrained_minimum_of_a_quadratic():
    steps = []
    x = Adam(lr=0.1).minimize(quadratic, np.zeros_like(TARGET), BOUNDS, 300, steps.append)
    assert np.allclose(x, [[1.0, -1.0, 0.5, 0.0]], atol=1e-2)  # clipped where the target is outside
    assert x.dtype == np.float32 and x.shape == TARGET.shape
    assert [s.step for s in steps] == list(range(1, 301))
    assert steps[-1].value < steps[0].value


def test_every_evaluated_point_is_inside_the_bounds_even_from_outside():
    seen = []

    def objective(x):
        seen.append(x.copy())
        return quadratic(x)

    x0 = np.array([[5.0, -5.0, 0.0, 2.0]], np.float32)  # starts outside: projected first
    x = Adam(lr=0.5).minimize(objective, x0, BOUNDS, 40, lambda r: None)
    assert len(seen) == 40
    assert all(np.all(v >= BOUNDS[0]) and np.all(v <= BOUNDS[1]) for v in seen + [x])
    assert np.array_equal(x0, [[5.0, -5.0, 0.0, 2.0]])  # x0 itself is left alone


def test_stops_on_stopiteration_and_returns_the_best_seen():
    values = []

    def stop_after_five(result):
        values.append(result.value)
        if result.step == 5:
            raise StopIteration

    x = Adam(lr=0.3).minimize(quadratic, np.zeros_like(TARGET), BOUNDS, 100, stop_after_five)
    assert len(values) == 5
    assert quadratic(x)[0] == pytest.approx(min(values))


def test_returns_the_best_point_not_the_last():
    """With a step far too large Adam overshoots; the result is still the best point evaluated."""
    values = []
    x = Adam(lr=50.0).minimize(quadratic, np.full_like(TARGET, 0.9), (np.full_like(TARGET, -100),
                               np.full_like(TARGET, 100)), 10, lambda r: values.append(r.value))
    assert quadratic(x)[0] == pytest.approx(min(values)) and min(values) < values[-1]


def test_callback_results_are_snapshots():
    results = []
    Adam(lr=0.1).minimize(quadratic, np.zeros_like(TARGET), BOUNDS, 5, results.append)
    assert not np.array_equal(results[0].x, results[-1].x)
    for r in results:
        assert r.value == pytest.approx(quadratic(r.x)[0])


def test_decay_shrinks_the_step_geometrically_over_the_run():
    """decay=d: the step size falls from lr to lr*d at the last update."""
    def moves(decay):
        xs = []
        # A constant gradient makes every Adam step exactly lr_t long.
        Adam(lr=1.0, decay=decay).minimize(lambda x: (float(x.sum()), np.ones_like(x)), np.zeros((1, 1)),
                                           (np.full((1, 1), -1e6), np.full((1, 1), 1e6)), 11,
                                           lambda r: xs.append(float(r.x[0, 0])))
        return -np.diff(xs)

    assert np.allclose(moves(1.0), 1.0, rtol=1e-4)
    steps = moves(0.01)
    assert steps[0] == pytest.approx(1.0, rel=1e-4) and steps[-1] == pytest.approx(0.01, rel=1e-3)
    assert np.allclose(steps[1:] / steps[:-1], 0.01 ** (1 / 9), rtol=1e-3)


@pytest.mark.parametrize("options, message", [
    ({"lr": 0}, "lr"), ({"lr": -1}, "lr"), ({"beta1": 1.0}, "beta1"), ({"beta2": -0.1}, "beta2"),
    ({"eps": 0}, "eps"), ({"decay": 0}, "decay"), ({"decay": 1.5}, "decay"), ({"lr": "fast"}, "lr"),
])
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises((UsageError, ValueError), match=message):
        Adam(**options)


def test_options_reach_adam_through_settings_and_the_cli(monkeypatch, tmp_path, vgg19_weights):
    """`--set adam.lr=0.5` -> Settings.options -> Adam(lr=0.5), through the real pipeline."""
    used = []
    original = Adam.minimize

    def spy(self, *args, **kwargs):
        used.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Adam, "minimize", spy)
    image = np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)
    settings = Settings(optimizer="adam", iterations=2, length=32, scales=1,
                        options={"adam": {"lr": 0.5, "beta1": 0.8}})
    transfer(image, image, settings)
    assert used[-1].lr == 0.5 and used[-1].beta1 == 0.8 and used[-1].beta2 == 0.999
    # Adam declares its options, so a misspelt key is refused before the run, with the right name.
    misspelt = Settings(optimizer="adam", iterations=2, length=32, scales=1, options={"adam": {"betta1": 0.8}})
    with pytest.raises(UsageError, match="optimizer 'adam' has no option 'betta1'; did you mean 'beta1'"):
        transfer(image, image, misspelt)

    path = tmp_path / "in.png"
    Image.fromarray((image * 255).astype(np.uint8)).save(path)
    result = CliRunner().invoke(cli, ["run", "-c", str(path), "-s", str(path), "-o", str(tmp_path / "o.png"),
                                      "--optimizer", "adam", "--set", "adam.lr=2", "--set", "adam.decay=0.5",
                                      "-n", "2", "-l", "32", "-q"])
    assert result.exit_code == 0, result.output
    assert used[-1].lr == 2.0 and used[-1].decay == 0.5 and (tmp_path / "o.png").is_file()


@pytest.mark.slow
def test_reduces_the_real_objective(vgg19_weights, photos, painting):
    """VGG19 at 64 px, content + Gram from the content image: 20 default Adam steps cut the objective 3x."""
    content = resize(photos["astronaut"], fit_long_side(photos["astronaut"].shape[:2], 64))
    style = resize(painting, fit_long_side(painting.shape[:2], 64))
    settings = Settings(length=64, optimizer="adam")
    losses = build_losses(settings, VGG19)
    backend = make_backend(settings, losses)
    objective = make_objective(backend, losses, content, style)
    x0 = backend.preprocess(content)
    start = objective(x0)[0]
    steps = []
    x = Adam().minimize(objective, x0, backend.input_bounds(x0.shape), 20, steps.append)
    end = objective(x)[0]
    assert len(steps) == 20 and objective.evaluations == 20 + 2  # one evaluation per step
    assert end < start / 3, (start, end)  # measured: 7x
    assert steps[-1].value < steps[0].value and end == pytest.approx(min(s.value for s in steps))
