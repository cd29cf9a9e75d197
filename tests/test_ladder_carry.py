"""The sqrt(2) ladder of levels, optimizer state carried from one level to the next, and Adam's averaged iterate."""
from __future__ import annotations

import numpy as np
import pytest

from stylize.core import UsageError
from stylize.core.run.pipeline import transfer
from stylize.core.planning.plan import make_plan
from stylize.core.request.schedule import scale_lengths, split_iterations, step_ratio
from stylize.core.request.settings import Settings
from stylize.optimizers import lbfgs32
from stylize.optimizers.adam import Adam
from stylize.optimizers.lbfgs import LBFGS
from stylize.optimizers.rescale import resize_planes
from stylize.testing import OptimizerContract

# -- the ladder ---------------------------------------------------------------------


def test_the_sqrt2_ladder_steps_by_sqrt2_down_to_the_smallest_automatic_level():
    assert scale_lengths(512, None, "sqrt2") == [128, 181, 256, 362, 512]
    assert scale_lengths(1024, None, "sqrt2")[:2] == [128, 181] and len(scale_lengths(1024, None, "sqrt2")) == 7
    assert scale_lengths(200, None, "sqrt2") == [141, 200] and scale_lengths(180, None, "sqrt2") == [180]
    assert scale_lengths(512, 3, "sqrt2") == [256, 362, 512]
    # octave stays what it was, by default and by name
    assert scale_lengths(512, None) == scale_lengths(512, None, "octave") == [128, 256, 512]


def test_the_iterations_fall_by_the_ladders_step_and_the_finest_level_gets_as_many_as_the_one_before():
    assert split_iterations(320, 3, step_ratio("octave")) == split_iterations(320, 3) == [160, 80, 80]
    counts = split_iterations(320, 5, step_ratio("sqrt2"))
    assert counts == [113, 77, 54, 38, 38] and sum(counts) == 320
    for total in (1, 7, 100, 321):
        assert sum(split_iterations(total, 5, step_ratio("sqrt2"))) == total


def test_the_plan_follows_the_ladder_setting(photos):
    content, style = photos["coffee"], photos["astronaut"]  # 400x600, 512x512
    plan = make_plan(Settings(ladder="sqrt2", length=600), content.shape, [style.shape])
    assert [level.length for level in plan.levels] == [150, 212, 300, 424, 600]
    assert plan.iterations == 320 and plan.final.shape == (400, 600)
    with pytest.raises(UsageError, match="ladder 'fifths': choose one of octave, sqrt2"):
        Settings(ladder="fifths").validate()


# -- state carried across levels ----------------------------------------------------------


def test_resized_state_keeps_its_leading_axes_and_stays_non_negative():
    v = np.abs(np.random.default_rng(0).normal(size=(1, 3, 6, 8))).astype(np.float32)
    out = resize_planes(v, (1, 3, 12, 16))
    assert out.shape == (1, 3, 12, 16) and out.dtype == np.float32 and out.min() >= 0
    assert out.mean() == pytest.approx(v.mean(), rel=0.05)
    with pytest.raises(ValueError, match="only the last two axes"):
        resize_planes(v, (1, 4, 12, 16))


def quadratic(shape, seed=0, curvature=3.0):
    """A bowl normalized by its size, as the style objective is per pixel: ``curvature * mean((x - t)^2)``."""
    target = np.random.default_rng(seed).uniform(-40, 40, shape).astype(np.float32)
    calls = []

    def objective(x):
        calls.append(1)
        d = x.astype(np.float64) - target
        return float(curvature * np.mean(d * d)), (2 * curvature * d / d.size).astype(np.float32)

    objective.calls = calls
    return objective, target


BOUNDS = lambda shape: (np.full(shape, -100, np.float32), np.full(shape, 100, np.float32))  # noqa: E731


def test_adam_carries_its_moments_into_the_next_level_only_when_asked():
    coarse, fine = (1, 3, 4, 5), (1, 3, 8, 10)
    objective, _ = quadratic(coarse)
    adam = Adam(lr=1)
    adam.minimize(objective, np.zeros(coarse, np.float32), BOUNDS(coarse), 5, lambda r: None)
    assert adam.carry_over() is None  # off by default
    adam = Adam(lr=1, carry=True)
    adam.minimize(objective, np.zeros(coarse, np.float32), BOUNDS(coarse), 5, lambda r: None)
    carried = adam.carry_over()
    assert carried["step"] == 4 and carried["m"].shape == coarse and adam.carry_over() is None  # taken once
    # A fresh Adam's first step moves every pixel by lr (m / sqrt(v) = sign(g)); carried moments do not.
    finer, _ = quadratic(fine, seed=1)
    steps = {}
    for name, given in (("fresh", None), ("carried", carried)):
        seen = []
        Adam(lr=1).minimize(finer, np.zeros(fine, np.float32), BOUNDS(fine), 2, lambda r: seen.append(r.x),
                            carried=given)
        steps[name] = np.abs(seen[1] - seen[0])
    assert steps["fresh"] == pytest.approx(1, rel=1e-3)
    assert not np.allclose(steps["carried"], 1, rtol=1e-2)


def test_lbfgs_float32_starts_a_level_with_the_carried_curvature_scale():
    """On a size-normalized bowl the carried scale, times the pixel ratio, is the exact Newton step:
    the finer level's first iteration needs one evaluation, a fresh start's unit step more."""
    coarse, fine = (1, 3, 4, 5), (1, 3, 8, 10)
    objective, _ = quadratic(coarse)
    lbfgs = LBFGS(precision="float32", carry=True)
    lbfgs.minimize(objective, np.zeros(coarse, np.float32), BOUNDS(coarse), 5, lambda r: None)
    carried = lbfgs.carry_over()
    assert carried["size"] == 60 and carried["scale"] == pytest.approx(60 / 6, rel=1e-3)
    assert LBFGS(precision="float64", carry=True).carry_over() is None  # scipy takes no starting scale
    first = {}
    for name, given in (("fresh", None), ("carried", carried)):
        finer, target = quadratic(fine, seed=1)
        evaluations = []

        def stop(result):
            evaluations.append(len(finer.calls))
            raise StopIteration

        x = LBFGS(precision="float32").minimize(finer, np.zeros(fine, np.float32), BOUNDS(fine), 10, stop,
                                                carried=given)
        first[name] = (evaluations[0] - 1, float(np.abs(x - target).max()))  # evaluations after x0's
    assert first["carried"][0] == 1 and first["carried"][1] < 1e-3
    assert first["fresh"][0] > 1


def test_the_level_loop_hands_each_optimizer_what_the_last_level_left(tiny, pictures, monkeypatch):
    """A real two-level run: the finer level's minimize receives the coarser one's moments; without
    ``carry`` it receives nothing (and no third-party optimizer is ever passed ``carried``)."""
    received = []
    original = Adam.minimize

    def spy(self, objective, x0, bounds, iterations, callback, **given):
        received.append((x0.shape, given.get("carried")))
        return original(self, objective, x0, bounds, iterations, callback, **given)

    monkeypatch.setattr(Adam, "minimize", spy)
    content, style = (p[::8, ::8] for p in pictures)
    for carry in (True, False):
        received.clear()
        options = {**tiny["options"], "adam": {"carry": carry}}
        transfer(content, style, Settings(**{**tiny, "options": options}, optimizer="adam", iterations=6,
                                          scales=2, length=64))
        (coarse, nothing), (fine, carried) = received
        assert nothing is None and fine[-1] > coarse[-1]
        if carry:
            assert carried["m"].shape == coarse and carried["step"] == 2
        else:
            assert carried is None


# -- Adam's averaged iterate ---------------------------------------------------------


def test_the_averaged_iterate_settles_where_adams_iterate_hovers():
    """Adam at a step size too large for the bowl hovers around its bottom; the average lands closer."""
    shape = (1, 3, 8, 8)
    errors = {}
    for average in (0.0, 0.9):
        objective, target = quadratic(shape, seed=2)
        x = Adam(lr=4, average=average).minimize(objective, np.zeros(shape, np.float32), BOUNDS(shape), 200,
                                                 lambda r: None)
        errors[average] = float(np.abs(x - target).mean())
    assert errors[0.9] < errors[0.0] / 3, errors
    with pytest.raises(UsageError, match="average must be in"):
        Adam(average=1.0)


# -- the optimizer contract, with the new options on -----------------------------------


class TestAdamCarriedAndAveraged(OptimizerContract):
    optimizer_class = Adam
    options = {"carry": True, "average": 0.9}
    state_arrays = 8.5  # Adam's 6.5, the average and the average handed back


class TestLBFGS32Carried(OptimizerContract):
    optimizer_class = LBFGS
    options = {"precision": "float32", "carry": True}
    state_arrays = lbfgs32.memory_bytes(1, 10) / 4 + 3
