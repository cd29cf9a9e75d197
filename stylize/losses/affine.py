"""Photorealism regularizer of Luan et al. 2017 ("Deep Photo Style Transfer").

The output should be, in every small window, an affine colour transform of
the content photo. Levin, Lischinski and Weiss (2008) showed that the error of
the best such fit, summed over all 3x3 windows, is the quadratic form V^T L V
of the *matting Laplacian* L of the content image. L is sparse (each pixel
meets the 25 pixels within two steps), built once per resolution here with
vectorized numpy and scipy.sparse, no loop over pixels.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from stylize.core import IMAGE, Features, Loss, Option

WINDOW = 3  # Levin et al.'s window side; the paper's code uses the same


def matting_laplacian(image: np.ndarray, epsilon: float = 1e-7) -> scipy.sparse.csr_matrix:
    """The (H*W) x (H*W) matting Laplacian (float32) of an HxWx3 image in [0, 1].

    L = sum over windows k of (I - 1/|w| (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| I)^-1 (I_j - mu_k)))
    restricted to the pixel pairs (i, j) of window k. Symmetric, rows sum to
    zero, positive semi-definite; ``epsilon`` regularizes flat windows.
    """
    h, w, _ = image.shape
    image = image.astype(np.float64)
    n = WINDOW * WINDOW
    index = np.arange(h * w, dtype=np.int32).reshape(h, w)  # int32: half the memory of the COO indices
    # Pixel indices of every full window, shape (windows, 9).
    windows = np.lib.stride_tricks.sliding_window_view(index, (WINDOW, WINDOW)).reshape(-1, n)
    colours = image.reshape(-1, 3)[windows]                        # (windows, 9, 3)
    mean = colours.mean(axis=1, keepdims=True)                     # (windows, 1, 3)
    centred = colours - mean
    covariance = np.einsum("kic,kid->kcd", centred, centred) / n   # (windows, 3, 3)
    inverse = np.linalg.inv(covariance + (epsilon / n) * np.eye(3))
    affinity = (1.0 + np.einsum("kic,kcd,kjd->kij", centred, inverse, centred)) / n
    values = (np.eye(n)[None] - affinity).astype(np.float32)       # (windows, 9, 9)
    rows = np.repeat(windows, n, axis=1).ravel()
    cols = np.tile(windows, (1, n)).ravel()
    del colours, centred, affinity
    laplacian = scipy.sparse.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w))
    return laplacian.tocsr()  # sums the entries of overlapping windows


class AffineLoss(Loss):
    """E = sum over colour channels c of V_c^T L V_c, V_c the output channel in [0, 1].

    Zero when the output is locally an affine transform of the content's
    colours; large for noise, painted texture or new edges. Options:
    ``epsilon`` (1e-7, the paper's value). Its weight (``--set
    affine.weight=...``) sets how photographic the result stays. The paper's
    code uses 1e4 on its own loss scale; on stylize's (content loss summed over
    a 512x512 image, ratio 1e4) that barely acts, so the default is 1e6: the
    weight where the output's edges clearly follow the content's for a few
    percent more style loss, while 1e7 leaves little style. Measured edge
    correlations per weight: bench/README.md, "The affine term".
    """

    role = "image"
    default_weight = 1e6
    options = (Option("epsilon", float, 1e-7,
                      "Regularizes the colour covariance of flat windows (Levin et al.)."),)

    def __init__(self, layers=(), epsilon: float = 1e-7, **options):
        super().__init__(layers, **options)
        self.epsilon = float(epsilon)
        self.laplacian = None

    def set_target(self, features: Features) -> None:
        self.laplacian = matting_laplacian(features[IMAGE], self.epsilon)

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        image = features[IMAGE]
        flat = image.reshape(-1, 3).astype(np.float32)
        product = self.laplacian @ flat                              # L V_c for the three channels
        value = float(np.einsum("ic,ic->", flat, product, dtype=np.float64))
        return value, {IMAGE: (2.0 * product).reshape(image.shape)}
