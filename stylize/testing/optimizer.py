"""OptimizerContract: what every ``stylize.optimizers`` plugin must pass (descent, bounds, callbacks, state memory)."""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pytest

from stylize.core.contracts import Optimizer, StepResult
from .checks import UNKNOWN_OPTION, check_declared_options


class OptimizerContract:
    """Tests for a ``stylize.optimizers`` plugin, on small bounded problems.

    Set ``optimizer_class``; optionally ``options`` (constructor keywords used
    by every test), and for the quadratic test ``iterations`` and
    ``reduction`` (the fraction of the initial excess over the constrained
    optimum that may remain). The quadratic lives on the scale of pixel
    values (bounds -50..50, x0 within +-20, targets within +-80, curvatures
    0.5..2), like a Caffe network's input.
    """

    optimizer_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    iterations: ClassVar[int] = 100
    reduction: ClassVar[float] = 1e-2
    shape: ClassVar[tuple[int, ...]] = (1, 3, 4, 5)
    #: Most image-sized float32 arrays the optimizer may hold at once (including
    #: the snapshot it hands the callback); None skips the memory test. A
    #: 512 px image is 3 MB, so each array counts at full size.
    state_arrays: ClassVar[float | None] = None

    def make_optimizer(self, **options) -> Optimizer:
        if self.optimizer_class is None:
            raise NotImplementedError("set optimizer_class (or override make_optimizer) in your Test class")
        return self.optimizer_class(**{**self.options, **options})

    def quadratic(self, seed: int = 0):
        """(objective, x0, bounds, optimum): sum(c * (x - t)^2) on [-50, 50], a third of t outside."""
        rng = np.random.default_rng(seed)
        target = rng.uniform(-80, 80, self.shape)
        curvature = rng.uniform(0.5, 2.0, self.shape)
        lower = np.full(self.shape, -50, np.float32)
        upper = np.full(self.shape, 50, np.float32)
        x0 = rng.uniform(-20, 20, self.shape).astype(np.float32)
        evaluated = []

        def objective(x):
            assert x.shape == self.shape, f"objective called with shape {x.shape}, expected {self.shape}"
            evaluated.append(np.array(x, copy=True))
            d = x.astype(np.float64) - target
            return float(np.sum(curvature * d * d)), (2 * curvature * d).astype(np.float32)

        objective.evaluated = evaluated
        return objective, x0, (lower, upper), np.clip(target, lower, upper)

    def _minimize(self, objective, x0, bounds, iterations, callback=None, **options):
        return self.make_optimizer(**options).minimize(objective, x0, bounds, iterations,
                                                       callback or (lambda result: None))

    def test_implements_the_optimizer_contract(self):
        assert isinstance(self.make_optimizer(), Optimizer)

    def test_reduces_a_bounded_quadratic(self):
        objective, x0, bounds, optimum = self.quadratic()
        best = objective(optimum)[0]
        start = objective(x0)[0]
        x = self._minimize(objective, x0, bounds, self.iterations)
        assert isinstance(x, np.ndarray) and x.shape == x0.shape and x.dtype == np.float32, \
            f"minimize must return a float32 array of x0's shape, got {type(x).__name__} " \
            f"{getattr(x, 'shape', '')} {getattr(x, 'dtype', '')}"
        excess = objective(x)[0] - best
        assert excess <= self.reduction * (start - best), \
            f"after {self.iterations} iterations {excess:.4g} above the optimum, from {start - best:.4g}"

    def test_respects_the_bounds(self):
        """A linear objective pushes every coordinate out: nothing evaluated, reported or returned leaves the box."""
        rng = np.random.default_rng(1)
        slope = rng.choice([-1.0, 1.0], self.shape) * rng.uniform(0.5, 2, self.shape)
        lower = np.full(self.shape, -10, np.float32)
        upper = np.full(self.shape, 20, np.float32)
        evaluated, reported = [], []

        def objective(x):
            evaluated.append(np.array(x, copy=True))
            return float(np.sum(slope * x)), slope.astype(np.float32)

        x0 = rng.uniform(-5, 15, self.shape).astype(np.float32)
        x = self._minimize(objective, x0, (lower, upper), 30, lambda r: reported.append(r.x.copy()))
        for what, arrays in (("evaluated", evaluated), ("reported", reported), ("returned", [x])):
            for array in arrays:
                assert np.all(array >= lower) and np.all(array <= upper), f"{what} x outside the bounds"
        pushed = np.where(slope > 0, lower, upper)
        assert np.abs(x - pushed).max() <= 0.05 * 30, "the result is not at the bounds it was pushed to"

    def test_calls_back_once_per_step_with_increasing_steps(self):
        objective, x0, bounds, _ = self.quadratic(seed=2)
        results = []
        self._minimize(objective, x0, bounds, 10, results.append)
        assert 1 <= len(results) <= 10, f"{len(results)} callbacks for 10 iterations"
        assert [r.step for r in results] == list(range(1, len(results) + 1)), \
            f"steps {[r.step for r in results]}; expected 1, 2, 3, ..."
        for r in results:
            assert isinstance(r, StepResult)
            assert isinstance(r.value, float) and math.isfinite(r.value)
            assert r.x.shape == x0.shape and r.x.dtype == np.float32
            assert r.value == pytest.approx(objective(r.x)[0], rel=1e-4), \
                "a step's value is not the objective at its x"

    def test_stops_on_stopiteration_and_returns_the_best(self):
        objective, x0, bounds, _ = self.quadratic(seed=3)
        results = []

        def stop_at_three(result):
            results.append(result)
            if result.step == 3:
                raise StopIteration

        x = self._minimize(objective, x0, bounds, 50, stop_at_three)
        assert [r.step for r in results] == [1, 2, 3], "StopIteration did not stop the optimizer"
        assert objective(x)[0] <= min(r.value for r in results) * (1 + 1e-6), \
            "the returned x is worse than a reported step"

    def test_does_not_modify_x0(self):
        objective, x0, bounds, _ = self.quadratic(seed=4)
        before = x0.copy()
        self._minimize(objective, x0, bounds, 5)
        assert np.array_equal(x0, before)

    def test_state_memory_is_bounded(self):
        """Peak Python allocations over a run, with an objective that allocates nothing."""
        if self.state_arrays is None:
            pytest.skip("state_arrays not set")
        import tracemalloc
        shape = (1, 3, 128, 128)
        grads = [np.ones(shape, np.float32), np.full(shape, 0.5, np.float32)]
        calls = []

        def objective(x):  # preallocated gradients: only the optimizer's own memory counts
            calls.append(1)
            return float(np.sum(x)), grads[len(calls) % 2]

        x0 = np.zeros(shape, np.float32)
        bounds = (np.full(shape, -1e6, np.float32), np.full(shape, 1e6, np.float32))
        tracemalloc.start()
        try:
            self.make_optimizer().minimize(objective, x0, bounds, 20, lambda r: None)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < self.state_arrays * x0.nbytes, \
            f"peak {peak / x0.nbytes:.1f} image-sized arrays, allowed {self.state_arrays}"

    def test_accepts_and_ignores_unknown_options(self):
        objective, x0, bounds, _ = self.quadratic(seed=5)
        x = self._minimize(objective, x0, bounds, 3, **{UNKNOWN_OPTION: 1})
        assert x.shape == x0.shape

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): unique, each default valid, equal to the constructor's and accepted."""
        check_declared_options(self.optimizer_class or type(self.make_optimizer()), self.make_optimizer)
