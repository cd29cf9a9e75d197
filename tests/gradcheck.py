"""Finite-difference checks of analytic gradients."""
from __future__ import annotations

import numpy as np


def directional_check(f, x: np.ndarray, grad: np.ndarray, eps: float, directions: int = 3,
                      seed: int = 0) -> list[tuple[float, float]]:
    """Pairs (central difference along d, grad . d) for random unit directions d."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(directions):
        d = rng.standard_normal(x.shape).astype(x.dtype)
        d /= np.linalg.norm(d)
        numeric = (float(f(x + eps * d)) - float(f(x - eps * d))) / (2 * eps)
        pairs.append((numeric, float(np.vdot(grad.astype(np.float64), d))))
    return pairs


def coordinate_check(f, x: np.ndarray, grad: np.ndarray, eps: float, count: int = 20,
                     seed: int = 0) -> np.ndarray:
    """Relative errors of central differences at ``count`` random coordinates.

    Errors are relative to the coordinate's own derivative, but never to less
    than a tenth of the mean gradient magnitude: where a derivative is nearly
    zero, float32 rounding alone would otherwise look like a large error.
    """
    rng = np.random.default_rng(seed)
    floor = 0.1 * float(np.abs(grad).mean()) or 1e-8
    errors = []
    for index in rng.choice(x.size, size=count, replace=False):
        step = np.zeros_like(x)
        step.flat[index] = eps
        numeric = (float(f(x + step)) - float(f(x - step))) / (2 * eps)
        analytic = float(grad.flat[index])
        errors.append(abs(numeric - analytic) / max(floor, abs(numeric) + abs(analytic)))
    return np.array(errors)
