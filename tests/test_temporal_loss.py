"""The temporal loss: stylize's loss contract, its value and gradient, its images and its errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylize.core import IMAGE, Images, ImageError, UsageError, plugins
from stylize.losses.temporal import TemporalLoss
from stylize.testing import LossContract, gradient_errors

SHAPE = (7, 9, 3)


def write_rgb(path, pixels: np.ndarray) -> str:
    Image.fromarray((pixels * 255 + 0.5).astype(np.uint8), mode="RGB").save(path)
    return str(path)


def write_gray(path, pixels: np.ndarray) -> str:
    Image.fromarray((pixels * 255 + 0.5).astype(np.uint8), mode="L").save(path)
    return str(path)


def images_for(shape) -> Images:
    content = np.zeros(shape, np.float32)
    return Images(content, [content], [1.0])


class TestTemporalContract(LossContract):
    """The contract with a random previous frame and a random soft mask, read from files as in a run.

    Its target is the previous frame, not the content image, so the contract's
    target tests are replaced by the ones below (``has_target = False``).
    """

    loss_class = TemporalLoss
    image_shape = SHAPE
    has_target = False

    @pytest.fixture(autouse=True)
    def _files(self, tmp_path):
        rng = np.random.default_rng(11)
        self.files = {"previous": write_rgb(tmp_path / "previous.png", rng.random(SHAPE)),
                      "mask": write_gray(tmp_path / "mask.png", rng.random(SHAPE[:2]))}

    def make_loss(self, layers, **options):
        return TemporalLoss(layers, **{**self.files, **options})


def test_registered_under_its_entry_point():
    assert plugins.load("stylize.losses", "temporal") is TemporalLoss


def test_value_is_the_masked_squared_distance_to_the_previous_frame(tmp_path):
    rng = np.random.default_rng(0)
    previous = np.round(rng.random(SHAPE) * 255) / 255  # exactly what an 8-bit PNG holds
    mask = (rng.random(SHAPE[:2]) > 0.5).astype(np.float32)
    loss = TemporalLoss((), previous=write_rgb(tmp_path / "p.png", previous), mask=write_gray(tmp_path / "m.png", mask))
    loss.set_images(images_for(SHAPE))
    image = rng.random(SHAPE).astype(np.float64)
    value, grads = loss({IMAGE: image})
    assert value == pytest.approx(np.sum(mask[..., None] * (image - previous) ** 2), rel=1e-5)
    assert np.allclose(grads[IMAGE], 2 * mask[..., None] * (image - previous), atol=1e-5)
    assert not grads[IMAGE][mask == 0].any(), "unreliable pixels pull the image"
    at_previous, grads = loss({IMAGE: previous})
    assert at_previous == pytest.approx(0, abs=1e-9) and np.abs(grads[IMAGE]).max() < 1e-6
    changed = previous.copy()
    changed[mask == 0] = 1 - changed[mask == 0]  # only where the flow is unreliable
    assert loss({IMAGE: changed})[0] == pytest.approx(0, abs=1e-9)


def test_gradient_matches_finite_differences_with_a_soft_mask_at_another_level_size(tmp_path):
    rng = np.random.default_rng(1)
    loss = TemporalLoss((), previous=write_rgb(tmp_path / "p.png", rng.random((14, 18, 3))),
                        mask=write_gray(tmp_path / "m.png", rng.random((14, 18))))
    loss.set_images(images_for(SHAPE))  # a coarser level: both images scaled to it
    image = rng.random(SHAPE)
    _, grads = loss({IMAGE: image})
    errors = gradient_errors(lambda x: loss({IMAGE: x})[0], image, grads[IMAGE], eps=1e-6, count=40)
    assert errors.max() < 1e-6


def test_without_a_mask_every_pixel_counts(tmp_path):
    rng = np.random.default_rng(2)
    previous = np.round(rng.random(SHAPE) * 255) / 255
    loss = TemporalLoss((), previous=write_rgb(tmp_path / "p.png", previous))
    loss.set_images(images_for(SHAPE))
    assert loss({IMAGE: previous + 0.1})[0] == pytest.approx(0.01 * previous.size, rel=1e-4)


def test_without_a_previous_frame_it_says_what_it_needs():
    loss = TemporalLoss(())
    with pytest.raises(UsageError, match="temporal.previous"):
        loss.set_images(images_for(SHAPE))


def test_unreadable_or_mismatched_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.png"):
        TemporalLoss((), previous=str(bad))
    with pytest.raises(ImageError, match="missing.png"):
        TemporalLoss((), previous=str(tmp_path / "missing.png"))
    rng = np.random.default_rng(3)
    with pytest.raises(UsageError, match="temporal.mask"):
        TemporalLoss((), previous=write_rgb(tmp_path / "p.png", rng.random(SHAPE)),
                     mask=write_gray(tmp_path / "m.png", rng.random((5, 5))))
