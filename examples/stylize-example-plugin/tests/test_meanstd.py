"""The meanstd loss: stylize's loss contract, plus what makes it a style statistic."""
import numpy as np
import pytest

from stylize.core import plugins
from stylize.testing import LossContract
from stylize_example.meanstd import MeanStdLoss


class TestMeanStdContract(LossContract):
    loss_class = MeanStdLoss


def test_registered_under_its_entry_point():
    """Fails unless the distribution is installed (its entry points live in its metadata)."""
    assert plugins.load("stylize.losses", "meanstd") is MeanStdLoss


def test_value_is_the_scaled_squared_difference_of_the_statistics():
    target = np.stack([np.full((2, 2), 1.0), np.array([[0.0, 2.0], [0.0, 2.0]])])  # means 1, 1; stds 0, 1
    loss = MeanStdLoss(["a"], eps=1e-12)
    loss.set_target({"a": target})
    features = np.stack([np.full((2, 2), 3.0), np.full((2, 2), 1.0)])  # means 3, 1; stds 0, 0
    scale = np.mean([1 + 0, 1 + 1]) / (4 * 2)  # mean diagonal of the style Gram / (4 N)
    assert loss({"a": features})[0] == pytest.approx(scale * ((3 - 1) ** 2 + 1 ** 2), rel=1e-5)


def test_ignores_where_features_are_and_the_image_size():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((4, 6, 6))
    shuffled = target.reshape(4, -1)[:, rng.permutation(36)].reshape(4, 6, 6)
    loss = MeanStdLoss(["a"])
    loss.set_target({"a": target})
    assert loss({"a": shuffled})[0] == pytest.approx(0, abs=1e-12)
    assert loss({"a": np.tile(target, (1, 2, 3))})[0] == pytest.approx(0, abs=1e-12)


def test_has_the_units_of_the_gram_loss():
    """Scaling features by k scales the value by k^4, as Gram's, so one --ratio suits both."""
    rng = np.random.default_rng(1)
    target, features = rng.standard_normal((2, 5, 4, 4)) + 1.0
    values = []
    for k in (1.0, 3.0):
        loss = MeanStdLoss(["a"], eps=0.0)
        loss.set_target({"a": k * target})
        values.append(loss({"a": k * features})[0])
    assert values[1] == pytest.approx(81 * values[0])


def test_dead_channels_have_finite_gradients():
    loss = MeanStdLoss(["a"])
    loss.set_target({"a": np.random.default_rng(2).random((3, 4, 4)).astype(np.float32)})
    value, grads = loss({"a": np.zeros((3, 4, 4), np.float32)})  # every channel constant
    assert np.isfinite(value) and np.isfinite(grads["a"]).all()
