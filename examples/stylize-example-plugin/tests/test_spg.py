"""The spg optimizer: stylize's optimizer contract, plus its reasons to exist."""

import numpy as np
import pytest

from stylize.core import UsageError, plugins
from stylize.testing import OptimizerContract
from stylize_example.spg import SPG


class TestSPGContract(OptimizerContract):
    optimizer_class = SPG
    state_arrays = 6.5  # x, trial, direction, scratch, best, and the snapshot handed to the callback


class TestMonotoneSPGContract(OptimizerContract):
    optimizer_class = SPG
    options = {"memory": 1, "alternate": False}


def test_registered_under_its_entry_point():
    """Fails unless the distribution is installed (its entry points live in its metadata)."""
    assert plugins.load("stylize.optimizers", "spg") is SPG


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_needs_no_step_size_for_any_scale(scale):
    """The same defaults solve an ill-conditioned bounded quadratic whatever the units of x."""
    rng = np.random.default_rng(0)
    shape = (1, 3, 8, 8)
    target = scale * rng.uniform(-1.5, 1.5, shape)
    curvature = np.geomspace(0.01, 1.0, target.size).reshape(shape) / scale ** 2

    def objective(x):
        d = x - target
        return float(np.sum(curvature * d * d)), (2 * curvature * d).astype(np.float32)

    bounds = (np.full(shape, -scale, np.float32), np.full(shape, scale, np.float32))
    x0 = np.zeros(shape, np.float32)
    optimum = np.clip(target, *bounds)
    x = SPG().minimize(objective, x0, bounds, 200, lambda r: None)
    best = objective(optimum)[0]
    assert objective(x)[0] - best < 1e-4 * (objective(x0)[0] - best)


@pytest.mark.parametrize("options", [{"memory": 0}, {"gamma": 1.5}, {"alternate": "maybe"},
                                     {"memory": "ten"}])
def test_bad_options_are_usage_errors(options):
    with pytest.raises(UsageError, match="spg"):
        SPG(**options)


def test_options_from_the_command_line_are_parsed():
    """--set spg.alternate=false arrives as False; as text it is understood too."""
    assert SPG(alternate=False).alternate is False
    assert SPG(alternate="false").alternate is False and SPG(memory=3).memory == 3
