"""Content and Gram losses: values and finite-difference gradients (pure numpy)."""
import numpy as np
import pytest

from stylize.losses.content import ContentLoss
from stylize.core import IMAGE
from stylize.losses.gram import GramLoss, gram
from stylize.losses.tv import TotalVariationLoss

from stylize.testing import gradient_errors as coordinate_check

LAYERS = ("a", "b")


def features(rng, shapes=((3, 5, 4), (6, 2, 3))):
    return {name: rng.standard_normal(shape) for name, shape in zip(LAYERS, shapes)}


@pytest.mark.parametrize("cls", [ContentLoss, GramLoss])
def test_gradient_matches_finite_differences(cls):
    rng = np.random.default_rng(1)
    loss = cls(LAYERS)
    loss.set_target(features(rng))
    x = features(rng)
    value, grads = loss(x)
    assert value > 0
    for layer in LAYERS:
        def f(v, layer=layer):
            return loss({**x, layer: v})[0]
        errors = coordinate_check(f, x[layer], grads[layer], eps=1e-6, count=15)
        assert errors.max() < 1e-6, (cls.__name__, layer, errors)


@pytest.mark.parametrize("cls", [ContentLoss, GramLoss])
def test_zero_at_target(cls):
    rng = np.random.default_rng(2)
    target = features(rng)
    loss = cls(LAYERS)
    loss.set_target(target)
    value, grads = loss(target)
    # Targets are stored as float32, hence the float32-sized tolerance.
    assert value == pytest.approx(0, abs=1e-10)
    assert all(np.abs(g).max() < 1e-6 for g in grads.values())


def test_content_loss_is_half_squared_error_averaged_over_layers():
    loss = ContentLoss(["a"])
    loss.set_target({"a": np.zeros((2, 2, 2))})
    value, _ = loss({"a": np.full((2, 2, 2), 3.0)})
    assert value == pytest.approx(0.5 * 8 * 9)


def test_gram_is_normalized_by_positions():
    f = np.ones((2, 3, 4))
    assert np.allclose(gram(f), np.ones((2, 2)))
    # Same statistics at twice the size give the same Gram matrix.
    assert np.allclose(gram(np.tile(f, (1, 2, 2))), gram(f))


def test_gram_loss_ignores_spatial_arrangement():
    """Style is a statistic of features, not where they are."""
    rng = np.random.default_rng(3)
    target = {"a": rng.standard_normal((4, 6, 6))}
    shuffled = target["a"].reshape(4, -1)[:, rng.permutation(36)].reshape(4, 6, 6)
    loss = GramLoss(["a"])
    loss.set_target(target)
    assert loss({"a": shuffled})[0] == pytest.approx(0, abs=1e-10)
    content = ContentLoss(["a"])
    content.set_target(target)
    assert content({"a": shuffled})[0] > 1


def test_tv_gradient_matches_finite_differences():
    image = np.random.default_rng(4).random((7, 9, 3))
    loss = TotalVariationLoss(())
    loss.set_target({IMAGE: image})
    value, grads = loss({IMAGE: image})
    errors = coordinate_check(lambda v: loss({IMAGE: v})[0], image, grads[IMAGE], eps=1e-6, count=25)
    assert errors.max() < 1e-6, errors


def test_tv_is_zero_for_flat_images_and_grows_with_noise():
    loss = TotalVariationLoss(())
    flat = np.full((8, 8, 3), 0.3)
    assert loss({IMAGE: flat})[0] == 0
    rng = np.random.default_rng(5)
    assert loss({IMAGE: flat + 0.1 * rng.standard_normal(flat.shape)})[0] > \
        loss({IMAGE: flat + 0.01 * rng.standard_normal(flat.shape)})[0] > 0
