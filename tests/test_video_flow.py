"""Flow, reliability mask and warp on synthetic clips whose true motion is known."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from stylize.video import flow

SIZE = 96


def texture(shape, seed: int) -> np.ndarray:
    """Smooth random colour texture in [0, 1]: features at every scale DIS looks at."""
    rng = np.random.default_rng(seed)
    noise = rng.random((*shape, 3))
    image = ndimage.gaussian_filter(noise, sigma=(2.0, 2.0, 0)) + 0.3 * ndimage.gaussian_filter(noise, (0.7, 0.7, 0))
    image -= image.min()
    return (image / image.max()).astype(np.float32)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy) pixels: out(x) = image(x - d); sub-pixel by spline interpolation."""
    return np.stack([ndimage.shift(image[..., c], (dy, dx), order=3, mode="nearest")
                     for c in range(3)], axis=-1).clip(0, 1).astype(np.float32)


def panned_pair(dx: float, dy: float):
    """Two frames of a camera pan: a large texture seen through a moving window (new content enters)."""
    big = texture((SIZE + 40, SIZE + 40), seed=1)
    first = big[20:20 + SIZE, 20:20 + SIZE]
    second = shifted(big, dx, dy)[20:20 + SIZE, 20:20 + SIZE]
    return first, second


def moving_square(d: int):
    """A textured square moving right by ``d`` px over a static textured background."""
    background, square = texture((SIZE, SIZE), seed=2), texture((32, 32), seed=3)
    frames = []
    for left in (30, 30 + d):
        frame = background.copy()
        frame[32:64, left:left + 32] = square
        frames.append(frame)
    return frames


@pytest.mark.parametrize("dx, dy", [(3.0, 0.0), (2.5, -1.5), (-4.0, 2.0)])
def test_flow_recovers_a_translation_within_half_a_pixel(dx, dy):
    first, second = panned_pair(dx, dy)
    forward = flow.flow(first, second)
    backward = flow.flow(second, first)
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(forward[inner][..., 0] - dx).max() < 0.5
    assert np.abs(forward[inner][..., 1] - dy).max() < 0.5
    assert np.abs(backward[inner][..., 0] + dx).max() < 0.5
    assert np.abs(backward[inner][..., 1] + dy).max() < 0.5


def test_mask_is_zero_where_a_pan_brings_in_new_content_and_one_elsewhere():
    d = 4
    first, second = panned_pair(d, 0)  # content moves right: a strip of d px enters on the left
    mask = flow.reliability(flow.flow(first, second), flow.flow(second, first))
    assert mask[:, :d - 1].mean() == 0.0, "the entering strip was marked reliable"
    assert mask[4:-4, d + 3:-4].mean() > 0.99


def test_mask_marks_the_disoccluded_strip_behind_a_moving_object():
    d = 5
    first, second = moving_square(d)
    mask = flow.reliability(flow.flow(first, second), flow.flow(second, first))
    strip = mask[34:62, 30:30 + d]  # background uncovered behind the square (minus its top and bottom edges)
    assert strip.mean() < 0.1, f"disoccluded strip reliable at {strip.mean():.0%} of its pixels"
    far = np.ones_like(mask, bool)
    far[32 - 8:64 + 8, 30 - 8:30 + d + 32 + 8] = False  # the square, its path and a band where DIS smears its edges
    assert mask[far].mean() > 0.99
    assert mask[38:58, 30 + d + 6:30 + d + 26].mean() > 0.99, "the square's inside is reliable"


def test_warp_of_the_previous_frame_matches_the_next_on_reliable_pixels():
    for first, second in (panned_pair(2.5, -1.5), moving_square(5)):
        backward = flow.flow(second, first)
        mask = flow.reliability(flow.flow(first, second), backward).astype(bool)
        warped = flow.warp(first, backward)
        error = np.abs(warped - second)[mask].mean()
        assert error < 0.02, f"warped frame differs by {error:.3f} on reliable pixels"
        assert error < 0.25 * np.abs(first - second)[mask].mean(), "the warp did not bring the frames together"


def test_warp_moves_an_image_by_a_given_flow_exactly():
    image = texture((20, 30), seed=4)
    backward = np.zeros((20, 30, 2), np.float32)
    backward[..., 0] = 2.0  # every pixel of the new frame came from 2 px to its right
    warped = flow.warp(image, backward)
    assert np.allclose(warped[:, :-2], image[:, 2:], atol=1e-6)


def test_warping_error_is_zero_for_a_warped_image_and_ignores_unreliable_pixels():
    first, second = panned_pair(3.0, 0.0)
    backward = flow.flow(second, first)
    mask = np.ones(first.shape[:2], np.float32)
    exact = flow.warp(first, backward)
    assert flow.warping_error(exact, first, backward, mask) == pytest.approx(0.0, abs=1e-10)
    spoiled = exact.copy()
    spoiled[:, :10] = 0.0
    assert flow.warping_error(spoiled, first, backward, mask) > 1e-3
    mask[:, :10] = 0.0
    assert flow.warping_error(spoiled, first, backward, mask) == pytest.approx(0.0, abs=1e-10)
