"""The objective evaluated tile by tile: the whole image's value and gradient, one tile's activations in memory.

Pass 1 runs the network on each tile and lets every feature loss add up
its statistics over the tile's core (``TiledLoss.tile_statistics``: Gram
sums, sums of squares). Pass 2 runs each tile again, asks each loss for the
gradient of the whole image's loss with respect to the core's features given
the totals (zero on the halo's features, which other tiles own), back-
propagates it to the tile's input and adds it into the whole image's
gradient. Pass 2 goes through the tiles backwards, so the last tile of
pass 1 is still in the network and is not run again. Image-space terms
(``tv``, ``affine``, ``temporal``) see the whole image, as untiled.

The targets are made the same way: content features assembled from tiles,
style statistics summed over the style image's tiles
(``TiledLoss.target_statistics``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..contracts import IMAGE, Backend, Images, tileable
from ..errors import PluginError, UsageError
from ..io.inputs import one_or_many
from .objective import Objective, WeightedLoss, blend_weights, prepare_terms
from .tiling import LayerWindow, Tile, TileGrid, Tiles

Totals = dict[str, np.ndarray]


def check_tileable(losses: Sequence[WeightedLoss]) -> None:
    """Refuse, before any work, a loss that cannot be evaluated tile by tile."""
    for term in losses:
        if not tileable(term.loss):
            raise UsageError(f"loss {term.name!r} cannot be evaluated in tiles (it does not implement "
                             "stylize.core.TiledLoss); use --tile-size off, or a --length that fits whole")


class TiledRunner:
    """Runs one image's tiles through the backend and hands out each tile's core features."""

    def __init__(self, backend: Backend, grid: TileGrid, layers: Sequence[str]):
        self.backend, self.grid, self.layers = backend, grid, list(layers)
        grids = grid.tiling.grid(grid.shape)
        self.tiles = [(tile, grid.windows(tile, {layer: grids[layer] for layer in self.layers}))
                      for tile in grid.tiles()]

    def forward(self, x: np.ndarray, tile: Tile, windows: Mapping[str, LayerWindow],
                backward: bool = True) -> dict[str, np.ndarray]:
        """The core features of ``tile`` of network input ``x`` (views into the backend: valid until the next run);
        ``backward``: whether a backward of this tile follows (``Backend.features`` when not)."""
        rows, cols = tile.span
        run = self.backend.forward if backward else self.backend.features
        features = run(np.ascontiguousarray(x[:, :, rows, cols]), self.layers)
        #: Each layer's feature shape in the tile the backend holds now (its gradient's shape).
        self.shapes = {layer: f.shape for layer, f in features.items()}
        cores = {}
        for layer, place in windows.items():
            f = features[layer]
            r, c = place.local
            if r.stop > f.shape[1] or c.stop > f.shape[2]:
                raise PluginError(f"a tile gives {layer} a {f.shape[2]}x{f.shape[1]} grid, too small for its "
                                  f"core ({c.stop}x{r.stop}): the backend's tiling() understates its receptive field")
            cores[layer] = f[:, r, c]
        return cores


def add_statistics(totals: Sequence[Totals], tile: Sequence[Mapping[str, np.ndarray]]) -> None:
    """Add one tile's statistics (one mapping per term) into the running ``totals``, in float64."""
    for sums, more in zip(totals, tile):
        _add(sums, more)


def _add(totals: Totals, sums: Mapping[str, np.ndarray]) -> None:
    for key, value in sums.items():
        value = np.asarray(value, np.float64)
        if key in totals:
            totals[key] += value
        else:
            totals[key] = value.copy()


def select_layers(cores: Mapping[str, np.ndarray], windows: Mapping[str, LayerWindow], layers: Sequence[str]):
    """A term's share of a tile's pass: its layers' core features and their windows, as its tile methods take them."""
    return {layer: cores[layer] for layer in layers}, {layer: windows[layer].window for layer in layers}


class TiledObjective(Objective):
    """``Objective``'s contract (value and gradient, ``terms``, ``weighted_terms()``, ``evaluations``)
    over tiles of ``grid``: equal to the untiled objective up to float32 rounding."""

    def __init__(self, backend: Backend, losses: Sequence[WeightedLoss], grid: TileGrid):
        super().__init__(backend, losses)
        check_tileable(self.losses)
        self.grid = grid
        self.feature_terms = [t for t in self.losses if t.loss.role != "image"]
        self.image_terms = [t for t in self.losses if t.loss.role == "image"]
        self.runner = TiledRunner(backend, grid, self.layers)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        tiles, runner = self.runner.tiles, self.runner
        totals: list[Totals] = [{} for _ in self.feature_terms]
        cores = {}
        for index, (tile, windows) in enumerate(tiles):
            cores = runner.forward(x, tile, windows, backward=index == len(tiles) - 1)
            add_statistics(totals, self.tile_statistics(cores, windows))
        total = self.feature_value(totals)
        grad = np.zeros_like(x)
        for index in reversed(range(len(tiles))):
            tile, windows = tiles[index]
            if index < len(tiles) - 1:  # the last tile of pass 1 is still in the network
                cores = runner.forward(x, tile, windows)
            grads = self.tile_gradients(cores, windows, totals)
            if grads:
                rows, cols = tile.span
                grad[:, :, rows, cols] += self.backend.backward(grads)
        return self.finish(total + self.add_image_terms(x, grad), grad)

    def tile_statistics(self, cores, windows) -> list[Totals]:
        """Each feature term's statistics of one tile's core features (pass 1's share of one tile)."""
        return [term.loss.tile_statistics(*select_layers(cores, windows, term.loss.layers)) for term in self.feature_terms]

    def feature_value(self, totals: Sequence[Totals]) -> float:
        """The feature terms' weighted value from the whole image's statistics; records each in ``terms``."""
        total = 0.0
        for term, sums in zip(self.feature_terms, totals):
            self.terms[term.name] = value = float(term.loss.tile_value(sums))
            total += term.weight * value
        return total

    def add_image_terms(self, x: np.ndarray, grad: np.ndarray) -> float:
        """The image-space terms on the whole image: their gradient added into ``grad``, their weighted value."""
        if not self.image_terms:
            return 0.0
        total, features, grads = 0.0, {IMAGE: self.backend.deprocess(x)}, {}
        for term in self.image_terms:
            value, layer_grads = term.loss(features)
            total += self.add_term(term, value, layer_grads, grads)
        grad += self.backend.image_gradient(grads[IMAGE])
        return total

    def tile_gradients(self, cores, windows, totals) -> dict[str, np.ndarray]:
        """Every term's weighted gradient on this tile's core features, put into tile-sized zero arrays."""
        grads: dict[str, np.ndarray] = {}
        for term, sums in zip(self.feature_terms, totals):
            for layer, g in term.loss.tile_gradient(*select_layers(cores, windows, term.loss.layers), sums).items():
                if layer not in grads:
                    grads[layer] = np.zeros(self.runner.shapes[layer], np.float32)
                if term.weight != 1.0:
                    g *= np.float32(term.weight)  # in place: the loss's gradients are ours (Loss.__call__)
                rows, cols = windows[layer].local
                core = grads[layer][:, rows, cols]
                core += g
        return grads


def tiled_features(backend: Backend, image: np.ndarray, grid: TileGrid, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """The whole image's features of ``layers``, assembled from the cores of ``grid``'s tiles."""
    runner = TiledRunner(backend, grid, layers)
    x = backend.preprocess(image)
    out: dict[str, np.ndarray] = {}
    for tile, windows in runner.tiles:
        for layer, core in runner.forward(x, tile, windows, backward=False).items():
            window = windows[layer].window
            if layer not in out:
                out[layer] = np.empty((core.shape[0], *window.shape), np.float32)
            out[layer][:, window.rows, window.cols] = core
    return out


def style_statistics(backend: Backend, image: np.ndarray, grid: TileGrid, terms: Sequence[WeightedLoss],
                     index: int) -> list[Totals]:
    """For each style term: its ``target_statistics`` of style image ``index``, summed over ``grid``'s tiles."""
    layers = sorted({layer for t in terms for layer in t.loss.layers})
    runner = TiledRunner(backend, grid, layers)
    x = backend.preprocess(image)
    totals: list[Totals] = [{} for _ in terms]
    for tile, windows in runner.tiles:
        cores = runner.forward(x, tile, windows, backward=False)
        for term, sums in zip(terms, totals):
            _add(sums, term.loss.target_statistics(*select_layers(cores, windows, term.loss.layers), index))
    return totals


def set_tiled_targets(backend: Backend, losses: Sequence[WeightedLoss], content: np.ndarray,
                      styles: Sequence[np.ndarray], tiles: Tiles) -> None:
    """Give the content and style terms their targets, computed tile by tile."""
    content_terms = [t for t in losses if t.loss.role == "content"]
    if content_terms:
        layers = sorted({layer for t in content_terms for layer in t.loss.layers})
        features = tiled_features(backend, content, tiles.grid(content.shape), layers)
        for term in content_terms:
            term.loss.set_target(features)
    style_terms = [t for t in losses if t.loss.role == "style"]
    if style_terms:
        per_image = [style_statistics(backend, image, tiles.grid(image.shape), style_terms, index)
                     for index, image in enumerate(styles)]
        for position, term in enumerate(style_terms):
            term.loss.set_target_statistics([sums[position] for sums in per_image])


def make_tiled_objective(backend: Backend, losses: Sequence[WeightedLoss], content: np.ndarray,
                         style: np.ndarray | Sequence[np.ndarray], tiles: Tiles, *,
                         style_weights: Sequence[float] | None = None, regions: np.ndarray | None = None,
                         style_regions: Sequence[np.ndarray] | None = None,
                         set_targets=set_tiled_targets) -> TiledObjective:
    """``stylize.core.evaluation.objective.make_objective`` tile by tile: targets and evaluations in ``tiles``;
    ``set_targets``: ``set_tiled_targets``' contract, here or elsewhere (a cluster's workers)."""
    check_tileable(losses)
    styles = one_or_many(style)
    scaled = prepare_terms(losses, Images(content, styles, blend_weights(style_weights, len(styles)), regions,
                                          style_regions))
    set_targets(backend, losses, content, styles, tiles)
    return TiledObjective(backend, scaled, tiles.grid(content.shape))

