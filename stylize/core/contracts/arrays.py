"""Numeric helpers shared by loss plugins."""
import numpy as np


def squared_norm(a: np.ndarray) -> float:
    """Sum of squares, accumulated in float64.

    A float32 BLAS dot over millions of feature values loses several digits,
    enough to mislead a line search and to break finite-difference checks.
    """
    flat = a.ravel()
    return float(np.einsum("i,i->", flat, flat, dtype=np.float64))
