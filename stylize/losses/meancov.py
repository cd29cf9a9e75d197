"""Mean + covariance style loss: the 2-Wasserstein distance between Gaussian fits of the features.

Where ``gram`` matches the uncentered second moment F F^T / M, this loss fits a
Gaussian (mean, covariance) to each style layer's features and measures the
squared 2-Wasserstein distance between the output's and the style's fits
(as crowsonkb's style-transfer-pytorch does):

    W2^2 = |mu - mu_s|^2 + tr(S) + tr(S_s) - 2 tr((S_s^1/2 S S_s^1/2)^1/2)

The matrix square roots are taken by a float64 eigendecomposition, not by
Newton-Schulz: on a CPU one ``eigh`` of a 512x512 matrix costs less than the
15-20 matrix products a Newton-Schulz iteration needs, and it is exact, so the
gradient matches finite differences to rounding (Newton-Schulz, a GPU method,
leaves a truncation error). Both covariances get ``EPS`` times the style's mean
variance on the diagonal, so a style layer with fewer positions than channels
(a coarse level's conv5_1) still has an invertible square root.

Its statistics are the Gram's plus the sums of the features (count, sum of
features, sum of outer products, per region), all additive over tiles; blends
mix the style images' moments by weight (the moments of the weighted mixture
of their features, as ``gram`` averages their Grams); semantic regions work as
in ``gram``. Each layer's term is scaled so that, for an output whose features
are all zero, it equals ``gram``'s term for the same style: the objective keeps
``gram``'s scale (its pull per ``--ratio`` is stronger: docs/meancov.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from stylize.core import Features, Windows

from .gram import MIN_POSITIONS, GramLoss

#: Added to both covariances' diagonals, relative to the style's mean variance (keeps the roots invertible).
EPS = 1e-4


@dataclass
class _Target:
    """One region's Gaussian fit of one layer of the blended style images."""

    mean: np.ndarray
    #: The covariance plus the regularizing diagonal, its square root, and the diagonal's value.
    cov: np.ndarray
    root: np.ndarray
    eps: float
    #: Scale of this term so that a zero output costs what it costs under ``gram``.
    scale: float


def _symmetric_root(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


def _target(mean: np.ndarray, second: np.ndarray) -> _Target:
    """The fit of blended moments: mean and second moment E[f f^T] -> covariance, root and scale."""
    n = mean.shape[0]
    cov = second - np.outer(mean, mean)
    cov = 0.5 * (cov + cov.T)
    eps = EPS * max(float(np.trace(cov)) / n, 1e-12)
    cov[np.diag_indices(n)] += eps
    power = float(np.trace(second))
    # gram's term at a zero output is |A|^2 / (4 N^2); this term's there is about tr(A) = |mu|^2 + tr(S).
    scale = float(np.sum(second * second)) / (4.0 * n * n * power) if power > 0 else 1.0
    return _Target(mean, cov, _symmetric_root(cov), eps, scale)


def _blend(totals: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float], layer: str,
           region: int) -> _Target | None:
    """The fit of the weighted mixture of the style images' features in ``region`` (None: no image has it)."""
    mean = second = None
    total = 0.0
    for sums, w in zip(totals, weights):
        area = float(sums[f"{layer}:{region}:area"])
        if w <= 0 or area < MIN_POSITIONS:
            continue
        m = np.asarray(sums[f"{layer}:{region}:sum"], np.float64) * (w / area)
        s = np.asarray(sums[f"{layer}:{region}"], np.float64) * (w / area)
        mean, second = (m, s) if mean is None else (mean + m, second + s)
        total += w
    return None if mean is None else _target(mean / total, second / total)


class MeanCovLoss(GramLoss):
    """E_l = k_l * W2^2 between Gaussian fits (mean, covariance) of the output's and the style's features.

    ``k_l`` makes a zero output cost what it costs under ``gram`` (see the
    module's docstring); layers are weighted by ``layer_weights`` (equal by
    default, normalized to sum 1) and regions summed, as in ``gram``.
    Tiled: the statistics are ``gram``'s (F W F^T, sum(W)) and F w, summed
    over cores.
    """

    #: (the totals last solved, their solution): see ``_solve``.
    _solved: tuple | None = None

    def _sums(self, features: Features, windows: Windows, masks: np.ndarray | None, key) -> dict[str, np.ndarray]:
        """``gram``'s sums and, per layer and region, F w (the weighted sum of the features)."""
        sums = super()._sums(features, windows, masks, key)
        for layer in self.layers:
            f, window = features[layer], windows[layer]
            flat = f.reshape(f.shape[0], -1)
            for region in range(self._count()):
                weights = self._weights(masks, key, region, window.shape)
                w = np.ones(flat.shape[1], flat.dtype) if weights is None else window.crop(weights).reshape(-1)
                sums[f"{layer}:{region}:sum"] = flat @ w.astype(flat.dtype, copy=False)  # BLAS, as gram's sums
        return sums

    def set_target_statistics(self, totals: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.targets = {layer: [_blend(totals, self._style_weights, layer, r) for r in range(self._count())]
                        for layer in self.layers}
        self._region_weights = {key: w for key, w in self._region_weights.items() if key[0] == "output"}
        self._solved = None

    def _solve(self, totals: Mapping[str, np.ndarray]) -> dict:
        """Per (layer, region) with a target and some area: (value, dE/dS, dE/dmu, mu, area).

        Cached for the ``totals`` object last solved: the tiled objective asks
        for the value once and the gradient once per tile with the same sums.
        """
        if self._solved is not None and self._solved[0] is totals:
            return self._solved[1]
        solved = {}
        for layer in self.layers:
            for region, target in enumerate(self.targets[layer]):
                area = float(totals[f"{layer}:{region}:area"])
                if target is None or area < MIN_POSITIONS:
                    continue
                mean = np.asarray(totals[f"{layer}:{region}:sum"], np.float64) / area
                cov = np.asarray(totals[f"{layer}:{region}"], np.float64) / area - np.outer(mean, mean)
                cov = 0.5 * (cov + cov.T)
                cov[np.diag_indices(len(mean))] += target.eps
                values, vectors = np.linalg.eigh(target.root @ cov @ target.root)
                # Both fits hold eps on their diagonals, so the eigenvalues are >= eps^2 but for rounding.
                values = np.maximum(values, 1e-2 * target.eps ** 2)
                root_values = np.sqrt(values)
                diff = mean - target.mean
                w2 = float(diff @ diff + np.trace(cov) + np.trace(target.cov) - 2.0 * root_values.sum())
                k = self.layer_weights[layer] * target.scale
                # d tr((A S A)^1/2) / dS = A (A S A)^-1/2 A / 2, with A the style's root.
                half = target.root @ vectors
                transport = (half / root_values) @ half.T
                grad_cov = k * (np.eye(len(mean)) - transport)
                solved[layer, region] = (k * w2, grad_cov, 2.0 * k * diff, mean, area)
        self._solved = (totals, solved)
        return solved

    def tile_value(self, totals: Mapping[str, np.ndarray]) -> float:
        return float(sum(item[0] for item in self._solve(totals).values()))

    def tile_gradient(self, features: Features, windows: Windows,
                      totals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        solved = self._solve(totals)
        grads = {}
        for layer in self.layers:
            f, window = features[layer], windows[layer]
            flat = f.reshape(f.shape[0], -1)
            grad = None
            for region in range(self._count()):
                if (layer, region) not in solved:
                    continue
                _, grad_cov, grad_mean, mean, area = solved[layer, region]
                # dE/dF = (2 dE/dS (F - mu) + dE/dmu) w^T / area, over the core's positions.
                term = ((2.0 / area) * grad_cov).astype(flat.dtype) @ flat
                term += ((grad_mean - 2.0 * grad_cov @ mean) / area)[:, None].astype(flat.dtype)
                weights = self._weights(self.regions, "output", region, window.shape)
                if weights is not None:
                    term *= window.crop(weights).reshape(-1)
                term = term.astype(np.float32, copy=False)
                grad = term if grad is None else grad + term
            grads[layer] = np.zeros(f.shape, np.float32) if grad is None else grad.reshape(f.shape)
        return grads
