"""bench/photoreal.py's three scores of a photorealistic transfer, which no network computes (issue 28).

- ``residual``: RMS (0..255) of the best local affine colour fit of the output from the content in 5x5
  windows. Luan et al.'s argument is that a photo restyled by light and tone is, in every small
  window, an affine function of the original's colours; painted texture, new edges and noise are
  not. Lower is more photo-like (0 for any global affine recolouring).
- ``dL``: the gap between the output's and the style's mean CIELAB L* (lightness: day against night).
- ``swd``: sliced Wasserstein distance (W1, in Lab units, averaged over fixed random directions)
  between the output's and the style's Lab pixel distributions: how much of the style's tone it took.

``residual_map`` keeps the per-window misfit, so a score can be read per region (``flat_residual``:
the windows where the content is flattest, sky and walls, where a painted texture shows first).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter

from stylize.starts.colour import rgb_to_lab

#: Window side of the local affine fit (the issue's 5x5).
WINDOW = 5
#: Regularizes the colour covariance of flat windows (in [0, 1]^2 units): a fit may not amplify noise.
EPSILON = 1e-6
#: Projections of the sliced Wasserstein distance, and quantiles compared along each.
DIRECTIONS, QUANTILES = 64, 256


def _local_means(x: np.ndarray) -> np.ndarray:
    """Means over the WINDOW x WINDOW windows that fit inside the image, of each trailing channel."""
    r = WINDOW // 2
    means = uniform_filter(x, size=(WINDOW, WINDOW) + (1,) * (x.ndim - 2), mode="nearest")
    return means[r:x.shape[0] - r, r:x.shape[1] - r]


def residual_map(output: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Per window, the mean squared error (in [0,1]^2 units, averaged over channels) of the best affine fit
    output ~ A content + b of its pixels (HxW windows fully inside the image, least squares)."""
    c, o = np.asarray(content, np.float64), np.asarray(output, np.float64)
    mean_c, mean_o = _local_means(c), _local_means(o)
    cc = _local_means(c[..., :, None] * c[..., None, :]) - mean_c[..., :, None] * mean_c[..., None, :]
    co = _local_means(c[..., :, None] * o[..., None, :]) - mean_c[..., :, None] * mean_o[..., None, :]
    oo = _local_means(o * o) - mean_o * mean_o
    cc += EPSILON * np.eye(3)
    # Residual variance of channel k: var(o_k) - cov(c, o_k)^T cov(c)^-1 cov(c, o_k).
    explained = np.einsum("...ik,...ik->...k", co, np.linalg.solve(cc, co))
    return np.clip(oo - explained, 0.0, None).mean(axis=-1)


def residual(output: np.ndarray, content: np.ndarray) -> float:
    """RMS (0..255) of the best local affine colour fit of ``output`` from ``content`` (5x5 windows)."""
    return float(255.0 * np.sqrt(residual_map(output, content).mean()))


def flat_residual(output: np.ndarray, content: np.ndarray, share: float = 0.25) -> float:
    """``residual`` over the ``share`` of windows where the content varies least (sky, walls, water)."""
    c = np.asarray(content, np.float64)
    spread = (_local_means(c * c) - _local_means(c) ** 2).sum(axis=-1)
    flat = spread <= np.quantile(spread, share)
    return float(255.0 * np.sqrt(residual_map(output, content)[flat].mean()))


def lightness_gap(output: np.ndarray, style: np.ndarray) -> float:
    """|mean L*(output) - mean L*(style)|."""
    return float(abs(rgb_to_lab(output)[..., 0].mean() - rgb_to_lab(style)[..., 0].mean()))


def sliced_wasserstein(output: np.ndarray, style: np.ndarray, seed: int = 0) -> float:
    """Mean over DIRECTIONS fixed unit directions of the W1 distance between the two images' Lab pixels
    projected on it (compared at QUANTILES quantiles, so the images' sizes may differ)."""
    a, b = rgb_to_lab(output).reshape(-1, 3), rgb_to_lab(style).reshape(-1, 3)
    directions = np.random.default_rng(seed).standard_normal((3, DIRECTIONS))
    directions /= np.linalg.norm(directions, axis=0)
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    qa, qb = np.quantile(a @ directions, levels, axis=0), np.quantile(b @ directions, levels, axis=0)
    return float(np.abs(qa - qb).mean())


def scores(output: np.ndarray, content: np.ndarray, style: np.ndarray) -> dict[str, float]:
    """The three scores (and ``flat``, the residual in the content's flattest quarter) of one output."""
    return {"residual": residual(output, content), "flat": flat_residual(output, content),
            "dL": lightness_gap(output, style), "swd": sliced_wasserstein(output, style)}
