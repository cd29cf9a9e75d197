"""The matting Laplacian and the affine (photorealism) loss."""
import numpy as np
import pytest

from stylize.core import IMAGE
from stylize.losses.affine import AffineLoss, matting_laplacian

from stylize.testing import gradient_errors as coordinate_check


@pytest.fixture(scope="module")
def photo(photos):
    return photos["chelsea"][100:124, 150:180].astype(np.float64)


def reference_laplacian(image: np.ndarray, epsilon: float = 1e-7) -> np.ndarray:
    """Levin et al.'s formula window by window, dense and in float64: what the banded build must equal."""
    h, w, _ = image.shape
    L = np.zeros((h * w, h * w))
    for y in range(h - 2):
        for x in range(w - 2):
            pixels = (np.arange(y, y + 3)[:, None] * w + np.arange(x, x + 3)).ravel()
            colours = image.reshape(-1, 3)[pixels]
            centred = colours - colours.mean(axis=0)
            inverse = np.linalg.inv(centred.T @ centred / 9 + epsilon / 9 * np.eye(3))
            L[np.ix_(pixels, pixels)] += np.eye(9) - (1 + centred @ inverse @ centred.T) / 9
    return L


def clean_edges() -> np.ndarray:
    """Flat regions split by exact edges, one almost flat window: nearly singular colour covariances."""
    image = np.zeros((11, 9, 3))
    image[:, 5:] = [0.2, 0.5, 0.9]
    image[6:, :3] = 0.7
    image[1:4, 6:9] += 1e-4
    return image


@pytest.mark.parametrize("kind", ["photo", "clean edges", "narrow"])
def test_laplacian_equals_the_formula_window_by_window_across_blocks(photo, kind, monkeypatch):
    from stylize.losses import affine
    crop = {"photo": photo[:11, :9], "clean edges": clean_edges(), "narrow": photo[:9, :4]}[kind]
    expected = reference_laplacian(crop)
    whole = matting_laplacian(crop).toarray()
    monkeypatch.setattr(affine, "BLOCK_WINDOWS", 7)  # one window row per block: 9 blocks
    blocked = matting_laplacian(crop).toarray()
    scale = np.abs(expected).max()
    assert np.abs(whole - expected).max() < 1e-6 * scale
    assert np.abs(blocked - expected).max() < 1e-6 * scale


def test_laplacian_is_symmetric_with_zero_row_sums_and_psd(photo):
    L = matting_laplacian(photo).tocsr()  # float32 entries of size up to ~8: tolerances to match
    assert L.shape == (photo.shape[0] * photo.shape[1],) * 2
    assert abs(L - L.T).max() < 1e-5
    assert np.abs(np.asarray(L.sum(axis=1), dtype=np.float64)).max() < 1e-4
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal(L.shape[0])
        assert x @ (L @ x) >= -1e-4 * (x @ x)
    # Each pixel meets at most the 25 pixels within two steps.
    assert np.diff(L.indptr).max() <= 25


def test_affine_loss_is_zero_for_colour_transforms_and_large_for_noise(photo):
    loss = AffineLoss()
    loss.set_target({IMAGE: photo})
    gain, offset = np.array([0.6, 1.1, 0.8]), np.array([0.1, -0.05, 0.2])
    recoloured = photo * gain + offset
    noisy = np.clip(photo + np.random.default_rng(1).normal(0, 0.05, photo.shape), 0, 1)
    affine_value = loss({IMAGE: recoloured})[0]
    noisy_value = loss({IMAGE: noisy})[0]
    assert noisy_value > 1.0
    assert affine_value < 1e-3 * noisy_value, (affine_value, noisy_value)


def test_affine_gradient_matches_finite_differences(photo):
    loss = AffineLoss()
    loss.set_target({IMAGE: photo})
    x = np.clip(photo + np.random.default_rng(2).normal(0, 0.05, photo.shape), 0, 1)
    value, grads = loss({IMAGE: x})
    errors = coordinate_check(lambda v: loss({IMAGE: v})[0], x, grads[IMAGE], eps=1e-3, count=25)
    assert np.median(errors) < 1e-3 and errors.max() < 1e-2, errors
