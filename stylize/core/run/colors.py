"""Keeping the content's colours (Gatys, Bethge, Hertzmann, Shechtman 2016).

Plain transfer repaints the photo in the painting's palette. The paper gives
two remedies, both here:

- luminance-only transfer: style is transferred on luminance alone (the
  style's luminance matched to the content's mean and spread first), and the
  result takes the content's colour channels (YIQ);
- colour matching: the style image's colours are mapped by the affine
  transform that gives them the content's mean and covariance, before an
  ordinary transfer.
"""
from __future__ import annotations

import numpy as np

#: RGB -> YIQ (NTSC); Y is luminance, I and Q carry colour.
_YIQ = np.array([[0.299, 0.587, 0.114],
                 [0.595716, -0.274453, -0.321263],
                 [0.211456, -0.522591, 0.311135]], np.float32)
_RGB = np.linalg.inv(_YIQ).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    return image @ _YIQ[0]


def gray(y: np.ndarray) -> np.ndarray:
    """A luminance channel as an HxWx3 image the network can read."""
    return np.repeat(np.clip(y, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luminance with the content's mean and standard deviation, as gray RGB."""
    ys, yc = luminance(style), luminance(content)
    return gray((ys - ys.mean()) / (ys.std() or 1.0) * yc.std() + yc.mean())


def restore_colors(output: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The output's luminance with the content's colour (I, Q) channels."""
    yiq = content @ _YIQ.T
    yiq[..., 0] = luminance(output)
    return np.clip(yiq @ _RGB.T, 0.0, 1.0).astype(np.float32)


def match_colors(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """``style`` recoloured so its RGB mean and covariance are the content's.

    x' = A (x - mu_s) + mu_c with A = C_c^1/2 C_s^-1/2 (symmetric square
    roots; the paper's "image analogies" variant), which keeps the style's
    shading while taking the content's palette.
    """
    s = style.reshape(-1, 3).astype(np.float64)
    c = content.reshape(-1, 3).astype(np.float64)
    transform = _sqrtm(np.cov(c.T)) @ np.linalg.inv(_sqrtm(np.cov(s.T) + 1e-5 * np.eye(3)))
    recoloured = (s - s.mean(axis=0)) @ transform.T + c.mean(axis=0)
    return np.clip(recoloured, 0.0, 1.0).reshape(style.shape).astype(np.float32)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
