"""Gram-matrix style loss (Gatys et al.), averaged over the style layers.

Also the blended and masked forms users expect: several style images mixed
by weight (the Grams are averaged, as in the reference tools), and semantic
regions (Luan et al. 2017), where each region of the output matches the
Gram of the same region of the style images.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from stylize.core import Features, Loss, StyleTarget, resize_regions, squared_norm

#: A region covering less than this many positions of a layer is skipped there.
MIN_POSITIONS = 0.5


def gram(features: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Normalized Gram matrix F F^T / M of CxHxW features (M = H*W positions).

    Dividing by M makes Gram matrices of images of different sizes comparable,
    so the style image need not have the output's size. With ``weights`` (HxW,
    a region's squared mask) it is F W F^T / sum(W): the Gram of that region
    alone, normalized by its area.
    """
    f = features.reshape(features.shape[0], -1)
    if weights is None:
        return (f @ f.T) / np.float32(f.shape[1])
    w = weights.reshape(-1)
    return ((f * w) @ f.T) / np.float32(w.sum())


class GramLoss(Loss):
    """E_l = 1/(4 N^2) * sum((G_l - A_l)^2) with normalized Grams (N channels).

    This equals the paper's 1/(4 N^2 M^2) * sum((F F^T - S S^T)^2) with the
    style's Gram taken at its own size. Layers are weighted by
    ``layer_weights`` (equal by default). With regions, E_l sums the same
    term over regions, each with its own Grams.
    """

    role = "style"
    options = ()

    def set_target(self, features: Features) -> None:
        self.set_style_targets([StyleTarget(features)], None)

    def set_style_targets(self, styles: Sequence[StyleTarget], regions: np.ndarray | None) -> None:
        self.regions = regions
        self._region_weights: dict[tuple[int, int], np.ndarray] = {}
        count = 1 if regions is None else len(regions)
        self.targets = {layer: [_blend(styles, layer, r if regions is not None else None)
                                for r in range(count)]
                        for layer in self.layers}

    def _weights(self, region: int | None, shape: tuple[int, int]) -> np.ndarray | None:
        """The output's squared mask of ``region`` at a layer's resolution (cached)."""
        if region is None:
            return None
        key = (region, *shape)
        if key not in self._region_weights:
            self._region_weights[key] = resize_regions(self.regions[region:region + 1], shape)[0] ** 2
        return self._region_weights[key]

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = 0.0, {}
        for layer in self.layers:
            share = self.layer_weights[layer]
            f = features[layer]
            n, m = f.shape[0], f[0].size
            flat = f.reshape(n, m)
            grad = None
            for region, target in enumerate(self.targets[layer]):
                weights = self._weights(None if self.regions is None else region, f.shape[1:])
                area = float(m if weights is None else weights.sum())
                if target is None or area < MIN_POSITIONS:
                    continue
                weighted = flat if weights is None else flat * weights.reshape(-1)
                diff = (weighted @ flat.T) / np.float32(area) - target
                value += share * squared_norm(diff) / (4.0 * n * n)
                # dE/dF = 1/(N^2 area) * (G - A) F W, since d(F W F^T) contributes twice.
                term = (diff * np.float32(share / (n * n * area))) @ weighted  # scale the small factor
                grad = term if grad is None else grad + term
            grads[layer] = (np.zeros_like(f) if grad is None else grad).reshape(f.shape)
        return value, grads


def _blend(styles: Sequence[StyleTarget], layer: str, region: int | None) -> np.ndarray | None:
    """The weighted mean of the style images' Grams of ``region`` (None: no image has it)."""
    total, weight = None, 0.0
    for style in styles:
        if style.weight <= 0:  # blended out: must not make an unshared region's target 0/0
            continue
        f = style.features[layer]
        weights = None
        if region is not None:
            weights = resize_regions(style.regions[region:region + 1], f.shape[1:])[0] ** 2
            if weights.sum() < MIN_POSITIONS:
                continue
        g = style.weight * gram(f, weights)
        total = g if total is None else total + g
        weight += style.weight
    return None if total is None else total / np.float32(weight)
