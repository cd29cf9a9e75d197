"""The histogram loss: stylize's loss contract, plus the style images it reads through set_images."""
import numpy as np
import pytest

from stylize.core import IMAGE, Images, UsageError, plugins
from stylize.testing import LossContract, gradient_errors
from stylize_example.histogram import HistogramLoss, quantiles


class TestHistogramContract(LossContract):
    loss_class = HistogramLoss


def test_registered_under_its_entry_point():
    """Fails unless the distribution is installed (its entry points live in its metadata)."""
    assert plugins.load("stylize.losses", "histogram") is HistogramLoss


def given(styles, weights=None, content=None):
    """A histogram loss that has received ``styles`` as the pipeline gives them."""
    loss = HistogramLoss()
    weights = weights or [1.0 / len(styles)] * len(styles)
    content = styles[0] if content is None else content
    loss.set_images(Images(content, styles, weights))
    loss.set_target({IMAGE: content})
    return loss


def smooth_image(rng, shape=(12, 10, 3)):
    """Values spread over [0.1, 0.9] without ties (ties make the sort's derivative one-sided)."""
    return (0.1 + 0.8 * rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape)).astype(np.float64)


def test_value_is_the_squared_wasserstein_distance_per_channel():
    style = np.zeros((1, 4, 3))
    style[0, :, 0] = [0.0, 0.2, 0.4, 0.6]
    output = style.copy()
    output[0, :, 0] = [0.7, 0.1, 0.5, 0.3]  # sorted: 0.1 0.3 0.5 0.7, each 0.1 above the style's
    assert given([style])({IMAGE: output})[0] == pytest.approx(4 * 0.1 ** 2 / 3)


def test_ignores_where_colours_are_and_the_image_size():
    rng = np.random.default_rng(0)
    style = rng.random((6, 8, 3))
    shuffled = rng.permutation(style.reshape(-1, 3)).reshape(4, 12, 3)
    loss = given([style], content=rng.random((4, 12, 3)))
    assert loss({IMAGE: shuffled})[0] == pytest.approx(0, abs=1e-12)
    assert loss({IMAGE: np.tile(style, (2, 1, 1))})[0] == pytest.approx(0, abs=1e-12)


def test_reads_the_style_images_not_the_content():
    rng = np.random.default_rng(1)
    style, content = rng.random((8, 8, 3)) * 0.5, rng.random((8, 8, 3)) * 0.5 + 0.5
    loss = given([style], content=content)
    assert loss({IMAGE: style})[0] == pytest.approx(0, abs=1e-12)
    assert loss({IMAGE: content})[0] > 0.1


def test_blended_styles_meet_at_their_quantiles():
    """Two styles blended 1:3 give the weighted mean of their quantile functions (the 1-D barycenter)."""
    dark, light = np.full((4, 4, 3), 0.2), np.full((2, 3, 3), 0.6)
    loss = given([dark, light], [0.25, 0.75])
    assert loss({IMAGE: np.full((5, 5, 3), 0.5)})[0] == pytest.approx(0, abs=1e-12)
    assert np.allclose(loss.target(7), 0.5)


def test_new_images_replace_the_old_at_the_next_level():
    rng = np.random.default_rng(2)
    first, second = rng.random((6, 6, 3)), rng.random((9, 9, 3))
    loss = given([first])
    loss.set_images(Images(second, [second], [1.0]))
    assert loss({IMAGE: second})[0] == pytest.approx(0, abs=1e-12)


def test_gradient_matches_finite_differences_on_an_image():
    rng = np.random.default_rng(3)
    style, x = rng.random((9, 7, 3)), smooth_image(rng)
    loss = given([style], content=x)
    value, grads = loss({IMAGE: x})
    assert value > 0 and grads[IMAGE].shape == x.shape
    errors = gradient_errors(lambda v: loss({IMAGE: v})[0], x, grads[IMAGE], eps=1e-7, count=40)
    assert errors.max() < 1e-5, errors


def test_quantiles_are_the_steps_of_the_sorted_values():
    values = np.array([[3.0, 1.0, 2.0, 0.0]])
    assert np.array_equal(quantiles(values, 4), [[0, 1, 2, 3]])
    assert np.array_equal(quantiles(values, 8), [[0, 0, 1, 1, 2, 2, 3, 3]])
    assert np.array_equal(quantiles(values, 2), [[1, 3]])
    assert np.array_equal(quantiles(values, 1), [[2]])


def test_without_style_images_it_says_so():
    loss = HistogramLoss()
    loss.set_target({IMAGE: np.zeros((2, 2, 3))})
    with pytest.raises(UsageError, match="no style images"):
        loss({IMAGE: np.zeros((2, 2, 3))})
