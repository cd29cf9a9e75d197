"""The blurred start: stylize's start contract, and a blur that keeps the layout and removes the fine texture."""
import numpy as np

from stylize.core import Images, plugins
from stylize.testing import StartContract
from stylize_example.blurred import Blurred, box_blur


class TestBlurredContract(StartContract):
    start_class = Blurred


def test_registered_under_its_entry_point():
    """Fails unless the distribution is installed (its entry points live in its metadata)."""
    assert plugins.load("stylize.starts", "blurred") is Blurred


def test_keeps_the_mean_and_removes_the_fine_texture():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (40, 50, 3)).astype(np.float32)
    blurred = box_blur(image, 3)
    assert abs(float(blurred.mean()) - float(image.mean())) < 0.01
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.2 * np.abs(np.diff(image, axis=1)).mean()


def test_radius_zero_is_the_content():
    content = np.random.default_rng(1).uniform(0, 1, (20, 30, 3)).astype(np.float32)
    start = Blurred(radius=0).image(Images(content, [content], [1.0]), (20, 30), None)
    np.testing.assert_array_equal(start, content)
