"""Gram-matrix style loss (Gatys et al.), averaged over the style layers.

Also the blended and masked forms users expect: several style images mixed
by weight (the Grams are averaged, as in the reference tools), and semantic
regions (Luan et al. 2017), where each region of the output matches the
Gram of the same region of the style images.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from stylize.core import (Features, Images, Loss, StyleTarget, TiledLoss, Window, Windows, resize_regions,
                          squared_norm)

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


class GramLoss(Loss, TiledLoss):
    """E_l = 1/(4 N^2) * sum((G_l - A_l)^2) with normalized Grams (N channels).

    This equals the paper's 1/(4 N^2 M^2) * sum((F F^T - S S^T)^2) with the
    style's Gram taken at its own size. Layers are weighted by
    ``layer_weights`` (equal by default). With regions, E_l sums the same
    term over regions, each with its own Grams.

    Tiled (``TiledLoss``): the statistics are each region's F W F^T and
    sum(W) over a core's positions; the whole image is one tile, so the
    untiled call is the same arithmetic.
    """

    role = "style"
    options = ()

    def set_target(self, features: Features) -> None:
        self.set_style_targets([StyleTarget(features)], None)

    def set_images(self, images: Images) -> None:
        """Keep the regions and blend weights for tiled targets (``target_statistics``)."""
        self.regions = images.regions
        self._style_regions, self._style_weights = images.style_regions, list(images.style_weights)
        self._region_weights: dict[tuple, np.ndarray] = {}

    def set_style_targets(self, styles: Sequence[StyleTarget], regions: np.ndarray | None) -> None:
        self.regions = regions
        self._region_weights = {}
        self._style_regions = None if regions is None else [style.regions for style in styles]
        self._style_weights = [style.weight for style in styles]
        self.set_target_statistics([self.target_statistics(style.features, _whole(style.features, self.layers), i)
                                    for i, style in enumerate(styles)])

    def set_target_statistics(self, totals: Sequence[Mapping[str, np.ndarray]]) -> None:
        self.targets = {layer: [_blend(totals, self._style_weights, layer, r) for r in range(self._count())]
                        for layer in self.layers}
        # The style images' masks are needed no more (at a print size they are large).
        self._region_weights = {key: w for key, w in self._region_weights.items() if key[0] == "output"}

    def _count(self) -> int:
        return 1 if self.regions is None else len(self.regions)

    def _weights(self, masks: np.ndarray | None, key, region: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The squared mask of ``region`` of ``masks`` (RxHxW) at a layer's grid ``shape`` (cached under ``key``)."""
        if masks is None:
            return None
        key = (key, region, *shape)
        if key not in self._region_weights:
            self._region_weights[key] = resize_regions(masks[region:region + 1], shape)[0] ** 2
        return self._region_weights[key]

    def _sums(self, features: Features, windows: Windows, masks: np.ndarray | None, key) -> dict[str, np.ndarray]:
        """Per layer and region: F W F^T and sum(W) over the core (W: the region's squared mask)."""
        sums = {}
        for layer in self.layers:
            f, window = features[layer], windows[layer]
            flat = f.reshape(f.shape[0], -1)
            for region in range(self._count()):
                weights = self._weights(masks, key, region, window.shape)
                weighted = flat if weights is None else flat * window.crop(weights).reshape(-1)
                sums[f"{layer}:{region}"] = weighted @ flat.T
                sums[f"{layer}:{region}:area"] = np.float64(
                    window.positions if weights is None else window.crop(weights).sum(dtype=np.float64))
        return sums

    def target_statistics(self, features: Features, windows: Windows, index: int) -> dict[str, np.ndarray]:
        masks = None if self.regions is None else self._style_regions[index]
        return self._sums(features, windows, masks, ("style", index))

    def tile_statistics(self, features: Features, windows: Windows) -> dict[str, np.ndarray]:
        return self._sums(features, windows, self.regions, "output")

    def _differences(self, totals: Mapping[str, np.ndarray], layer: str):
        """(region, G - A, area) of each region of ``layer`` that has a target and some area."""
        for region, target in enumerate(self.targets[layer]):
            area = float(totals[f"{layer}:{region}:area"])
            if target is not None and area >= MIN_POSITIONS:
                yield region, totals[f"{layer}:{region}"] / area - target, area

    def tile_value(self, totals: Mapping[str, np.ndarray]) -> float:
        value = 0.0
        for layer in self.layers:
            for _, diff, _ in self._differences(totals, layer):
                n = diff.shape[0]
                value += self.layer_weights[layer] * squared_norm(diff) / (4.0 * n * n)
        return value

    def tile_gradient(self, features: Features, windows: Windows,
                      totals: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        grads = {}
        for layer in self.layers:
            f, window = features[layer], windows[layer]
            n = f.shape[0]
            flat = f.reshape(n, -1)
            grad = None
            for region, diff, area in self._differences(totals, layer):
                weights = self._weights(self.regions, "output", region, window.shape)
                weighted = flat if weights is None else flat * window.crop(weights).reshape(-1)
                # dE/dF = 1/(N^2 area) * (G - A) F W, since d(F W F^T) contributes twice.
                scale = (diff * (self.layer_weights[layer] / (n * n * area))).astype(np.float32)
                term = scale @ weighted
                grad = term if grad is None else grad + term
            grads[layer] = np.zeros(f.shape, np.float32) if grad is None else grad.reshape(f.shape)
        return grads

    def __call__(self, features: Features) -> tuple[float, dict[str, np.ndarray]]:
        windows = _whole(features, self.layers)
        totals = self.tile_statistics(features, windows)
        return self.tile_value(totals), self.tile_gradient(features, windows, totals)


def _whole(features: Features, layers: Sequence[str]) -> dict[str, Window]:
    """Windows that make the whole grid of each layer one tile."""
    return {layer: Window(slice(0, h), slice(0, w), (h, w))
            for layer in layers for h, w in [features[layer].shape[1:]]}


def _blend(totals: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float], layer: str,
           region: int) -> np.ndarray | None:
    """The weighted mean of the style images' Grams of ``region`` (None: no image has it)."""
    total, weight = None, 0.0
    for sums, w in zip(totals, weights):
        area = float(sums[f"{layer}:{region}:area"])
        if w <= 0 or area < MIN_POSITIONS:  # blended out: must not make an unshared region's target 0/0
            continue
        g = w * sums[f"{layer}:{region}"] / area
        total = g if total is None else total + g
        weight += w
    return None if total is None else (total / weight).astype(np.float32)
