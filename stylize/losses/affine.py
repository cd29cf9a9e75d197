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

The same matrix also finishes a result in closed form (``smooth``, Li et al.
2018): the output is replaced by the image closest to it that is locally
affine in the content, a sparse solve instead of more iterations, which
removes the painted texture the optimization leaves (bench/photoreal.py).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from stylize.core import IMAGE, Features, Loss, Option, UsageError

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


#: ``smooth``'s conjugate gradient stops when the residual falls below this share of the right-hand side
#: (0.1%: a tenth of a grey level on a mid-grey image), or after SMOOTH_ITERATIONS.
SMOOTH_TOLERANCE, SMOOTH_ITERATIONS = 1e-3, 2000
#: Bytes per pixel ``smooth`` adds: eight float64 HxWx3 arrays (the image, the right-hand side, the solution,
#: the residual, its preconditioned copy, the direction, its product with the matrix and L x inside it).
SMOOTH_BYTES_PER_PIXEL = 8 * 3 * 8


def smooth(image: np.ndarray, laplacian: scipy.sparse.spmatrix, strength: float) -> tuple[np.ndarray, int]:
    """Li et al. 2018's photorealistic smoothing of ``image`` (HxWx3) by the content's matting ``laplacian``.

    R = argmin  R^T L R / AREA + strength |R - Y|^2: the linear system (strength I + L / AREA) R =
    strength Y, symmetric positive definite, solved for the three channels at once by conjugate
    gradients with a Jacobi preconditioner, from Y. Li et al. normalize L by the affinity's row sums
    (D^-1/2 L D^-1/2); AREA is those sums inside the image, and the plain L keeps every locally affine
    image exactly as it is (a global colour transfer came out of their form 3.5x further from locally
    affine, and with 17x the residual in flat regions: bench/photoreal.py's scores at 256 px). Their
    lambda is ``strength`` (1e-4; larger keeps more of Y's texture). Returns the image, clipped into
    [0, 1], and the iterations run.
    """
    target = np.asarray(image, np.float64).reshape(-1, 3)

    def apply(x: np.ndarray) -> np.ndarray:
        return strength * x + (laplacian @ x) / AREA

    diagonal = strength + laplacian.diagonal() / AREA
    rhs = strength * target
    x = target.copy()
    residual = rhs - apply(x)
    z = residual / diagonal[:, None]
    direction = z.copy()
    rz = np.einsum("ic,ic->c", residual, z)
    stop = SMOOTH_TOLERANCE * np.linalg.norm(rhs, axis=0)
    for iteration in range(1, SMOOTH_ITERATIONS + 1):
        product = apply(direction)
        step = rz / np.maximum(np.einsum("ic,ic->c", direction, product), 1e-300)
        x += step * direction
        residual -= step * product
        if np.all(np.linalg.norm(residual, axis=0) <= stop):
            break
        z = residual / diagonal[:, None]
        rz, previous = np.einsum("ic,ic->c", residual, z), rz
        direction = z + (rz / np.maximum(previous, 1e-300)) * direction
    return np.clip(x, 0.0, 1.0).reshape(image.shape).astype(np.float32), iteration


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
                      "Regularizes the colour covariance of flat windows (Levin et al.)."),
               Option("smooth", float, 0.0,
                      "After the last level, smooth the result in closed form to be locally affine in the "
                      "content (Li et al. 2018): the strength, their lambda (1e-4); 0: off."))

    def __init__(self, layers=(), epsilon: float = 1e-7, smooth: float = 0.0, **options):
        super().__init__(layers, **options)
        if not smooth >= 0:
            raise UsageError(f"affine.smooth must be 0 (off) or a positive strength, got {smooth}")
        self.epsilon, self.strength = float(epsilon), float(smooth)
        self.laplacian = None

    def memory_bytes(self, shape) -> int:
        """Peak bytes this term holds for an output of ``shape`` (height, width): the matrix, and
        beside it the build's temporaries, an evaluation's float32 arrays or ``smooth``'s vectors."""
        pixels = int(shape[0]) * int(shape[1])
        return MATRIX_BYTES_PER_PIXEL * pixels + max(build_bytes(shape),
                                                     EVALUATION_BYTES_PER_PIXEL * pixels + EVALUATION_BYTES,
                                                     SMOOTH_BYTES_PER_PIXEL * pixels if self.strength else 0)

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

    def finish(self, image: np.ndarray) -> np.ndarray:
        """The run's result after its last level: smoothed by the last level's matrix when ``smooth`` is on."""
        if not self.strength or self.laplacian is None or self.laplacian.shape[0] != image.shape[0] * image.shape[1]:
            return image
        return smooth(image, self.laplacian, self.strength)[0]
