"""Photorealism without a network: bench/photoreal.py's scores, the global colour transfers, Li et al.'s smoothing."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg

from stylize.starts.colour import (Covariance, Distribution, Reinhard, covariance, distribution, lab_to_rgb, reinhard,
                                   rgb_to_lab)
from stylize.testing import StartContract
from stylize.losses.affine import matting_laplacian, smooth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from photoreal_scores import lightness_gap, residual, scores, sliced_wasserstein  # noqa: E402


def scene(shape=(48, 64), seed=0) -> np.ndarray:
    """A synthetic photo: smooth colour gradients, a few flat-shaded discs with soft edges, faint noise."""
    rng = np.random.default_rng(seed)
    h, w = shape
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    image = np.stack([0.3 + 0.4 * x, 0.25 + 0.3 * y, 0.5 - 0.2 * x * y], axis=-1)
    for _ in range(4):
        cy, cx, r = rng.uniform(0.1, 0.7), rng.uniform(0.1, 0.9), rng.uniform(0.08, 0.2)
        inside = 1.0 / (1.0 + np.exp(((y - cy) ** 2 + (x - cx) ** 2 - r * r) * 400))
        image += inside[..., None] * (rng.uniform(-0.15, 0.15, 3))
    image += rng.normal(0, 0.005, image.shape)
    return np.clip(image, 0.02, 0.98).astype(np.float32)


def painted(image: np.ndarray, seed=1) -> np.ndarray:
    """Vertical brush streaks of random strength: texture the content does not have."""
    rng = np.random.default_rng(seed)
    streaks = 0.08 * np.sin(np.arange(image.shape[1]) * 1.3)[None, :, None] * rng.uniform(0.5, 1.0, image.shape[:2])[..., None]
    return np.clip(image + streaks, 0, 1).astype(np.float32)


GAIN, OFFSET = np.array([0.6, 1.1, 0.8], np.float32), np.array([0.1, -0.05, 0.15], np.float32)


def test_a_global_affine_recolouring_is_locally_affine_and_a_painted_texture_is_not():
    content = scene()
    recoloured = content @ np.array([[0.6, 0.1, 0.0], [0.05, 0.8, 0.1], [0.0, 0.1, 0.7]], np.float32) + OFFSET
    assert recoloured.min() >= 0 and recoloured.max() <= 1  # no clipping: exactly affine
    assert residual(content, content) < 0.3
    assert residual(recoloured, content) < 0.3
    assert residual(painted(content), content) > 3.0
    # Of the same painted texture, more is worse.
    assert residual(painted(content), content) > 1.5 * residual((painted(content) + content) / 2, content)


def test_lightness_gap_and_sliced_wasserstein_measure_tone():
    content, other = scene(seed=0), scene(seed=3)
    assert sliced_wasserstein(content, content) == 0.0
    darker = (content * 0.7).astype(np.float32)
    assert lightness_gap(content, content) < 1e-9
    gap = lightness_gap(darker, content)
    assert 5 < gap < 30
    assert sliced_wasserstein(darker, content) > 0.3 * gap  # a pure lightness shift, seen along random directions
    # The distance follows how far the distributions are moved, not the pictures' layout.
    flipped = content[::-1, ::-1].copy()
    assert sliced_wasserstein(flipped, content) < 1e-6
    assert sliced_wasserstein(content * 0.9, content) < sliced_wasserstein(darker, content)
    assert sliced_wasserstein(other, content) > 0


def test_lab_round_trip_and_reference_colours():
    rgb = np.random.default_rng(0).uniform(0, 1, (16, 16, 3)).astype(np.float32)
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)) - rgb).max() < 1e-5
    white, red = rgb_to_lab(np.ones((1, 1, 3)))[0, 0], rgb_to_lab(np.array([[[1.0, 0, 0]]]))[0, 0]
    assert np.allclose(white, [100, 0, 0], atol=0.01)
    assert np.allclose(red, [53.24, 80.09, 67.20], atol=0.05)  # sRGB red in CIELAB (D65)


def test_reinhard_gives_the_content_the_styles_lab_mean_and_spread():
    content, style = scene(seed=0), (scene(seed=5) * 0.5 + np.float32([0.3, 0.2, 0.05])).astype(np.float32)
    result = reinhard(content, style)
    lab, target = rgb_to_lab(result).reshape(-1, 3), rgb_to_lab(style).reshape(-1, 3)
    assert np.allclose(lab.mean(axis=0), target.mean(axis=0), atol=0.05)
    assert np.allclose(lab.std(axis=0), target.std(axis=0), rtol=0.02, atol=0.05)
    assert scores(result, content, style)["swd"] < 0.5 * scores(content, content, style)["swd"]


def test_covariance_transfer_gives_the_styles_lab_mean_and_covariance():
    content, style = scene(seed=0), (scene(seed=5) * 0.6 + np.float32([0.25, 0.2, 0.1])).astype(np.float32)
    result = rgb_to_lab(covariance(content, style)).reshape(-1, 3)
    target = rgb_to_lab(style).reshape(-1, 3)
    assert np.allclose(result.mean(axis=0), target.mean(axis=0), atol=0.05)
    assert np.allclose(np.cov(result.T), np.cov(target.T), atol=0.05 * np.abs(np.cov(target.T)).max())


def test_a_blend_of_styles_is_matched_as_one_mixture():
    content, dark, light = scene(seed=0), scene(seed=1) * 0.4, np.clip(scene(seed=2) * 0.5 + 0.45, 0, 1)
    both = np.concatenate([dark, light])  # equal sizes: the mixture with weights 1:1
    for transfer in (reinhard, covariance):
        assert np.abs(transfer(content, [dark, light]) - transfer(content, both)).max() < 1e-4
        weighted = rgb_to_lab(transfer(content, [dark, light], [0.9, 0.1]))[..., 0].mean()
        assert weighted < rgb_to_lab(transfer(content, both))[..., 0].mean() - 5


def test_distribution_transfer_gives_the_content_the_styles_whole_colour_distribution():
    content = scene(seed=0)
    # Two lights: a Gaussian fit (mean and covariance) cannot match this.
    style = np.where(np.arange(64)[None, :, None] < 40, scene(seed=4) * 0.3, np.clip(scene(seed=6) + 0.3, 0, 1))
    style = style.astype(np.float32)
    result = distribution(content, style)
    assert sliced_wasserstein(result, style) < 0.25 * sliced_wasserstein(covariance(content, style), style)
    # A function of the colour alone: equal colours stay equal.
    flat = np.full_like(content, 0.4)
    flat[:, 32:] = 0.7
    recoloured = distribution(flat, style)
    assert np.ptp(recoloured[:, :32], axis=(0, 1)).max() < 1e-6 and np.ptp(recoloured[:, 32:], axis=(0, 1)).max() < 1e-6
    # A blend leans to the heavier style.
    dark, light = (scene(seed=1) * 0.4).astype(np.float32), np.clip(scene(seed=2) * 0.5 + 0.45, 0, 1)
    lightness = [rgb_to_lab(distribution(content, [dark, light], w))[..., 0].mean() for w in ([0.9, 0.1], [0.1, 0.9])]
    assert lightness[0] < lightness[1] - 10


class TestReinhardStart(StartContract):
    start_class = Reinhard


class TestCovarianceStart(StartContract):
    start_class = Covariance


class TestDistributionStart(StartContract):
    start_class = Distribution


def test_smoothing_solves_lis_system_and_keeps_locally_affine_images():
    content = scene((20, 24)).astype(np.float64)
    laplacian = matting_laplacian(content)
    streaked = painted(content.astype(np.float32))
    strength = 1e-3
    result, iterations = smooth(streaked, laplacian, strength)
    system = (strength * scipy.sparse.identity(laplacian.shape[0]) + laplacian / 9.0).tocsc()
    exact = scipy.sparse.linalg.spsolve(system, strength * streaked.reshape(-1, 3).astype(np.float64))
    assert 1 < iterations < 2000
    assert np.abs(result.reshape(-1, 3) - np.clip(exact, 0, 1)).max() < 2e-3
    # An image already locally affine in the content stays as it is.
    recoloured = (content * GAIN + OFFSET).astype(np.float32)
    kept, _ = smooth(recoloured, laplacian, strength)
    assert np.abs(kept - recoloured).max() < 2e-3


@pytest.mark.parametrize("strength", [1e-4, 1e-2])
def test_smoothing_removes_painted_texture(strength):
    content = scene()
    streaked = painted(content * GAIN + OFFSET)
    result, _ = smooth(streaked, matting_laplacian(content), strength)
    assert residual(result, content) < residual(streaked, content) / 3
    # ... and keeps its colours: the streaks averaged out, not the recolouring.
    assert np.abs(result.mean(axis=(0, 1)) - streaked.mean(axis=(0, 1))).max() < 0.01
