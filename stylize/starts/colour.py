"""Global colour transfers as the start of a photo's restyling (Reinhard 2001; Pitie 2005 and 2007).

A photo restyled by light and tone (day to dusk, summer to autumn) is first
of all a change of its colour statistics. Giving the content the style's
CIELAB statistics takes a second and yields a picture that is, pixel by
pixel, a function of the content's colour alone: no painted texture at all.
The optimization starts from there, not from the content: ``--init
distribution`` (the whole colour distribution) is the photo preset's start,
``reinhard`` (mean and spread per channel) and ``covariance`` (mean and
covariance) the classic ones. They are bench/photoreal.py's baselines too
(docs/photoreal.md).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.linalg

from stylize.core import Images, Option, StartImage, UsageError, resize

#: Linear sRGB -> CIE XYZ (D65), and the D65 white point.
_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                 [0.2126729, 0.7151522, 0.0721750],
                 [0.0193339, 0.1191920, 0.9503041]])
_RGB = np.linalg.inv(_XYZ)
_WHITE = _XYZ.sum(axis=1)
_DELTA = 6.0 / 29.0


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """HxWx3 sRGB in [0, 1] -> CIELAB (L* in 0..100), float64."""
    c = np.asarray(image, np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ _XYZ.T) / _WHITE
    f = np.where(t > _DELTA ** 3, np.cbrt(t), t / (3 * _DELTA ** 2) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB -> HxWx3 sRGB float32, clipped into [0, 1] (colours outside the gamut land on its edge)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    t = np.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4.0 / 29.0))
    linear = np.clip((t * _WHITE) @ _RGB.T, 0.0, 1.0)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def _statistics(styles: Sequence[np.ndarray], weights: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Lab mean and covariance of the styles' blend (a mixture: each image's pixels weighted by its weight)."""
    weights = np.full(len(styles), 1.0 / len(styles)) if weights is None else np.asarray(weights, np.float64)
    weights = weights / weights.sum()
    pixels = [rgb_to_lab(s).reshape(-1, 3) for s in styles]
    mean = sum(w * p.mean(axis=0) for w, p in zip(weights, pixels))
    covariance = sum(w * (p - mean).T @ (p - mean) / len(p) for w, p in zip(weights, pixels))
    return mean, covariance


def reinhard(content: np.ndarray, styles: np.ndarray | Sequence[np.ndarray],
             weights: Sequence[float] | None = None) -> np.ndarray:
    """``content`` with the styles' (blended) CIELAB mean and standard deviation, channel by channel."""
    styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
    lab = rgb_to_lab(content)
    mean, covariance = _statistics(styles, weights)
    flat = lab.reshape(-1, 3)
    scale = np.sqrt(np.diag(covariance)) / np.maximum(flat.std(axis=0), 1e-6)
    return lab_to_rgb((lab - flat.mean(axis=0)) * scale + mean)


def covariance(content: np.ndarray, styles: np.ndarray | Sequence[np.ndarray],
               weights: Sequence[float] | None = None) -> np.ndarray:
    """``content`` mapped by the affine Lab transform that gives it the styles' mean and covariance and
    moves its colours least (the Monge-Kantorovich map between the two Gaussians, Pitie and Kokaram 2007):
    A = C^-1/2 (C^1/2 S C^1/2)^1/2 C^-1/2 for the content's covariance C and the style's S."""
    styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
    lab = rgb_to_lab(content)
    flat = lab.reshape(-1, 3)
    mean, target = _statistics(styles, weights)
    own = np.cov(flat.T, bias=True) + 1e-6 * np.eye(3)
    root = np.real(scipy.linalg.sqrtm(own))
    inverse_root = np.linalg.inv(root)
    transform = inverse_root @ np.real(scipy.linalg.sqrtm(root @ target @ root)) @ inverse_root
    return lab_to_rgb((lab - flat.mean(axis=0)) @ transform.T + mean)


#: Quantiles a distribution transfer compares along each direction.
QUANTILES = 512


def distribution(content: np.ndarray, styles: np.ndarray | Sequence[np.ndarray],
                 weights: Sequence[float] | None = None, rotations: int = 20, seed: int = 0) -> np.ndarray:
    """``content`` with the styles' whole Lab colour distribution (Pitie, Kokaram and Dahyot 2005).

    Mean and covariance leave a photo's tone half-matched when the style's colours are not one
    Gaussian (a dark sky over bright lights). Pitie's iterative transfer matches the 1-D distributions
    of the content's colours to the style's along three orthogonal directions, then along another
    random rotation, ``rotations`` times (each step a monotone map along each direction). Pixel by
    pixel a function of the colour alone, it is locally near-affine, but it stretches noise and splits
    close colours in places: the affine term and its smoothing (``affine.smooth``) take that out.
    """
    styles = [styles] if isinstance(styles, np.ndarray) else list(styles)
    weights = np.full(len(styles), 1.0 / len(styles)) if weights is None else np.asarray(weights, np.float64)
    rng = np.random.default_rng(seed)
    x = rgb_to_lab(content).reshape(-1, 3)
    targets = [rgb_to_lab(s).reshape(-1, 3) for s in styles]
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    for _ in range(rotations):
        rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        projected = x @ rotation
        for axis in range(3):
            # Several styles: the weighted mean of their quantile functions (their Wasserstein barycentre).
            quantiles = sum(w * np.quantile(t @ rotation[:, axis], levels) for w, t in zip(weights / weights.sum(),
                                                                                           targets))
            # Each value's share of the content below it, ties at their middle: equal colours stay equal.
            values = projected[:, axis]
            ordered = np.sort(values)
            share = (np.searchsorted(ordered, values, "left") + np.searchsorted(ordered, values, "right")) / (2 * len(x))
            projected[:, axis] = np.interp(share, levels, quantiles)
        x = projected @ rotation.T
    return lab_to_rgb(x.reshape(content.shape))


#: The transfers by name, as bench/photoreal.py calls them.
TRANSFERS = {"reinhard": reinhard, "covariance": covariance, "distribution": distribution}


class Reinhard(StartImage):
    """The content with the style's CIELAB mean and spread per channel (Reinhard 2001): a photo's new light."""

    options = ()

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(reinhard(images.content, images.styles, images.style_weights), shape)


class Covariance(StartImage):
    """The content moved by the least affine colour map to the style's Lab mean and covariance (Pitie 2007)."""

    options = ()

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(covariance(images.content, images.styles, images.style_weights), shape)


class Distribution(StartImage):
    """The content with the style's whole Lab colour distribution (Pitie 2005's iterative transfer)."""

    options = (Option("rotations", int, 20, "Random rotations of the colour space matched in turn (more: closer)."),)

    def __init__(self, rotations: int = 20, **options):
        if rotations < 1:
            raise UsageError(f"distribution.rotations must be at least 1, got {rotations}")
        self.rotations = rotations

    def image(self, images: Images, shape: tuple[int, int], seed: int | None) -> np.ndarray:
        return resize(distribution(images.content, images.styles, images.style_weights, self.rotations), shape)
