"""Photorealism regularizer of Luan et al. 2017 ("Deep Photo Style Transfer").

The output should be, in every small window, an affine colour transform of
the content photo. Levin, Lischinski and Weiss (2008) showed that the error of
the best such fit, summed over all 3x3 windows, is the quadratic form V^T L V
of the *matting Laplacian* L of the content image. L is sparse: each pixel
meets only the 25 pixels within two steps, so it is 25 diagonals of an
(H*W) x (H*W) matrix, kept here as exactly that (``scipy.sparse.dia_matrix``,
float32: 100 bytes per pixel, no index arrays) and built in blocks of window
rows, so the build's peak is the matrix plus one block's temporaries.
Measured against the former COO build and pymatting's ``cf_laplacian``:
bench/affine.py, README "The affine term at large sizes".
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from stylize.core import IMAGE, Features, Loss, Option

WINDOW = 3  # Levin et al.'s window side; the paper's code uses the same
#: Pixels of a window (|w| in Levin et al.).
AREA = WINDOW * WINDOW
#: Diagonals of L: offsets (dy, dx) between two pixels of one window, each in -2..2.
REACH = WINDOW - 1
OFFSETS = [(dy, dx) for dy in range(-REACH, REACH + 1) for dx in range(-REACH, REACH + 1)]
#: Windows per block of the build; its float64 temporaries take about BLOCK_BYTES_PER_WINDOW each:
#: the centred colours and their products with the inverse covariance (9 x 3 each), the inverse
#: (3 x 3), the block's colours (3, and its border rows: 4) and two rows of work. Against tracemalloc's
#: peak: tests/test_affine_memory.py.
BLOCK_WINDOWS = 1 << 16
BLOCK_BYTES_PER_WINDOW = 8 * (2 * AREA * 3 + 3 * 3 + 4 + 2)
#: Bytes per pixel the matrix keeps: one float32 per diagonal.
MATRIX_BYTES_PER_PIXEL = 4 * len(OFFSETS)
#: Bytes per pixel an evaluation adds: L V (returned, doubled, as the gradient) and a float32 copy of
#: an image that is not float32 already.
EVALUATION_BYTES_PER_PIXEL = 2 * 3 * 4
#: And whatever the size: the buffers of the float64 sum (einsum's, about 150 KiB measured).
EVALUATION_BYTES = 1 << 18


def matting_laplacian(image: np.ndarray, epsilon: float = 1e-7) -> scipy.sparse.dia_matrix:
    """The (H*W) x (H*W) matting Laplacian (float32, 25 diagonals) of an HxWx3 image in [0, 1].

    L = sum over windows k of (I - 1/|w| (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| I)^-1 (I_j - mu_k)))
    restricted to the pixel pairs (i, j) of window k. Symmetric, rows sum to
    zero, positive semi-definite; ``epsilon`` regularizes flat windows.
    Computed in float64 per block of window rows, stored in float32.
    """
    h, w, _ = image.shape
    offsets = [dy * w + dx for dy, dx in OFFSETS]
    # dia_matrix keeps the entry (j - offset, j) at data[k, j]: by column, laid out as the image.
    data = np.zeros((len(OFFSETS), h, w), np.float32)
    if h >= WINDOW and w >= WINDOW:
        rows = max(1, BLOCK_WINDOWS // (w - REACH))
        for top in range(0, h - REACH, rows):
            _add_windows(data, image, top, min(top + rows, h - REACH), float(epsilon))
    data = data.reshape(len(OFFSETS), h * w)
    unique, where = np.unique(offsets, return_inverse=True)
    if len(unique) < len(offsets):  # narrower than 5 px: two (dy, dx) share a diagonal, each 0 where the other is not
        merged = np.zeros((len(unique), h * w), np.float32)
        np.add.at(merged, where, data)
        offsets, data = unique, merged
    return scipy.sparse.dia_matrix((data, offsets), shape=(h * w, h * w))


def _add_windows(data: np.ndarray, image: np.ndarray, top: int, bottom: int, epsilon: float) -> None:
    """Add to ``data`` the entries of the windows whose top-left pixel lies in rows ``top..bottom-1``.

    Channel-major (9 positions x 3 channels x windows), so that every operation runs over contiguous
    rows of windows.
    """
    w = image.shape[1]
    block = np.moveaxis(np.asarray(image[top:bottom + REACH], np.float64), -1, 0)   # (3, rows, w)
    span = (bottom - top, w - REACH)
    # Colour of window position a = (a_y, a_x) for every window of the block, centred on the window's mean.
    centred = np.empty((AREA, 3) + span)
    for a in range(AREA):
        centred[a] = block[:, a // WINDOW:a // WINDOW + span[0], a % WINDOW:a % WINDOW + span[1]]
    centred = centred.reshape(AREA, 3, -1)
    centred -= centred.mean(axis=0)
    covariance = np.empty((centred.shape[-1], 3, 3))
    for c in range(3):
        for d in range(c, 3):
            covariance[:, c, d] = covariance[:, d, c] = np.einsum("ak,ak->k", centred[:, c], centred[:, d]) / AREA
        covariance[:, c, c] += epsilon / AREA
    # LU with pivoting (LAPACK): the adjugate formula lost 0.08% on windows across a clean edge.
    inverse = np.linalg.inv(covariance)
    del covariance
    inverse = np.ascontiguousarray(inverse.reshape(-1, 3, 3).transpose(1, 2, 0))  # (3, 3, windows)
    value, product = np.empty(centred.shape[-1]), np.empty(centred.shape[-1])
    weighted = np.empty_like(centred)                                            # Sigma^-1 (I_a - mu)
    for a in range(AREA):
        for c in range(3):
            np.multiply(inverse[c, 0], centred[a, 0], out=weighted[a, c])
            for d in (1, 2):
                np.multiply(inverse[c, d], centred[a, d], out=product)
                weighted[a, c] += product
    del inverse
    positions = [(ay, ax) for ay in range(WINDOW) for ax in range(WINDOW)]
    for a, (ay, ax) in enumerate(positions):
        for b in range(a, AREA):
            by, bx = positions[b]
            np.multiply(centred[a, 0], weighted[b, 0], out=value)
            for c in (1, 2):
                np.multiply(centred[a, c], weighted[b, c], out=product)
                value += product
            value += 1.0
            value *= -1.0 / AREA
            if a == b:
                value += 1.0
            entries = value.reshape(span)
            # Entry (p_a, p_b) sits on diagonal p_b - p_a, column p_b; (p_b, p_a) mirrors it.
            data[OFFSETS.index((by - ay, bx - ax)), top + by:bottom + by, bx:bx + span[1]] += entries
            if a != b:
                data[OFFSETS.index((ay - by, ax - bx)), top + ay:bottom + ay, ax:ax + span[1]] += entries


def build_bytes(shape) -> int:
    """Bytes of one block's float64 temporaries while ``matting_laplacian`` builds an image of ``shape``
    (height, width), besides the matrix itself."""
    h, w = int(shape[0]), int(shape[1])
    per_row = max(0, w - REACH)
    windows = min(max(0, h - REACH), max(1, BLOCK_WINDOWS // max(1, per_row))) * per_row
    return BLOCK_BYTES_PER_WINDOW * windows


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

    L is built for the whole image (never tiled: it is image-sized whatever
    the tiles), so the term declares its memory (``memory_bytes``) and the
    run's estimate counts it.
    """

    role = "image"
    default_weight = 1e6
    options = (Option("epsilon", float, 1e-7,
                      "Regularizes the colour covariance of flat windows (Levin et al.)."),)

    def __init__(self, layers=(), epsilon: float = 1e-7, **options):
        super().__init__(layers, **options)
        self.epsilon = float(epsilon)
        self.laplacian = None

    def memory_bytes(self, shape) -> int:
        """Peak bytes this term holds for an output of ``shape`` (height, width): the matrix, and
        beside it the build's temporaries or, later, an evaluation's float32 arrays."""
        pixels = int(shape[0]) * int(shape[1])
        return MATRIX_BYTES_PER_PIXEL * pixels + max(build_bytes(shape),
                                                     EVALUATION_BYTES_PER_PIXEL * pixels + EVALUATION_BYTES)

    def set_target(self, features: Features) -> None:
        self.laplacian = None  # the previous level's matrix is not needed to build the next
        self.laplacian = matting_laplacian(features[IMAGE], self.epsilon)

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        image = features[IMAGE]
        flat = np.asarray(image, np.float32).reshape(-1, 3)
        product = self.laplacian @ flat                              # L V_c for the three channels
        value = float(np.einsum("ic,ic->", flat, product, dtype=np.float64))
        product *= 2.0
        return value, {IMAGE: product.reshape(image.shape)}
