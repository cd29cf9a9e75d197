"""What a tiled evaluation costs (memory, FLOPs, pixels through the network), and the cheapest tiling that fits.

A tiled level's memory no longer grows with the network's activations: it
is one tile's peak (``Backend.estimate_peak_bytes`` at the largest tile)
plus what stays image-sized: the content targets, the Gram statistics, the
image-sized arrays around the objective, the optimizer's state and what the
terms hold (``Loss.memory_bytes``). The run plan (``stylize.core.plan``)
decides which levels are tiled; this module prices a tiling and searches one.
"""
from __future__ import annotations

import math
from typing import Sequence

from . import memory
from .contracts import Backend, Optimizer, tileable
from .objective import WeightedLoss
from .schedule import sizes_at
from .tiling import Tiles, make_tiles

Shape = Sequence[int]

#: Float32 image-sized arrays (3 x H x W) a tiled run holds at its peak besides the optimizer's own:
#: the working x, its gradient, the bounds (2), the level's content and start images, the
#: best and the latest x reported, and the image an image term or a checkpoint deprocesses
#: (with its temporaries).
IMAGE_COPIES = 12
#: Feature-sized float32 arrays per layer read, of the largest tile, that a tiled evaluation holds
#: beyond what ``Backend.estimate_peak_bytes`` counts: the losses' contiguous copies of a core (a
#: view into the tile) and the tile-sized gradient arrays the cores' gradients are put into.
#: Chosen by bench/tiling.py (peak against estimate).
TILE_FEATURE_COPIES = 1.0
#: A float64 Gram statistic is held three times per style layer (the sums, one tile's, the target).
GRAM_COPIES = 3
#: The smallest cores ``auto`` tries, and those a refusal's "largest length that fits" assumes (pixels).
SMALL_CORE = 256


def tiled_bytes(backend: Backend, optimizer: Optimizer, losses: Sequence[WeightedLoss], tiles: Tiles,
                shape: Shape, style_shapes: Sequence[Shape], iterations: int | None = None) -> int | None:
    """Estimated peak resident memory (bytes) of a level evaluated in ``tiles``, or None if unknown.

    ``iterations``: the level's, the most the optimizer runs (``memory.optimizer_bytes``).
    """
    grids = [tiles.grid(s) for s in (shape, *style_shapes)]
    span = (max(g.largest[0] for g in grids), max(g.largest[1] for g in grids))
    network = backend.estimate_peak_bytes(span)
    if network is None:
        return None
    tiling = tiles.tiling
    full = tiling.grid(shape)
    channels = tiling.channels

    def layers(role: str) -> set[str]:
        return {layer for t in losses if t.loss.role == role for layer in t.loss.layers}

    in_tile = tiling.grid(span)
    copies = TILE_FEATURE_COPIES * sum(channels.get(layer, 0) * math.prod(in_tile[layer]) * 4
                                       for layer in layers("content") | layers("style"))
    targets = sum(channels.get(layer, 0) * math.prod(full[layer]) * 4 for layer in layers("content"))
    grams = sum(channels.get(layer, 0) ** 2 * 8 * GRAM_COPIES for layer in layers("style"))
    variables = 3 * int(shape[0]) * int(shape[1])
    state = memory.optimizer_bytes(optimizer, variables, iterations)
    terms = memory.terms_bytes(losses, shape)  # image-sized whatever the tiles (the affine term's Laplacian)
    return network + int(copies) + targets + grams + IMAGE_COPIES * 4 * variables + int(state) + terms


def work(tiles: Tiles, shape: Shape) -> int:
    """Pixels run through the network per evaluation, counting a forward and a backward as one each:
    every tile twice forward (the last once) and once backward; what ``auto`` minimizes."""
    grid = tiles.grid(shape)
    last = grid.tiles()[-1].span_shape
    return 3 * grid.pixels() - last[0] * last[1]


def tiled_flops(backend: Backend, tiles: Tiles, shape: Shape) -> int | None:
    """FLOPs of one tiled evaluation: each tile's forward and backward, and its second forward
    (taken as half of the two) but for the last tile's."""
    spans = [tile.span_shape for tile in tiles.grid(shape).tiles()]
    flops = [backend.estimate_flops(span) for span in spans]
    if any(f is None for f in flops):
        return None
    return int(1.5 * sum(flops) - 0.5 * flops[-1])


def tiling_of(backend: Backend, losses: Sequence[WeightedLoss]):
    """The backend's ``Tiling`` of the layers the losses read; None when the run cannot be tiled
    (the network, or a loss without ``TiledLoss``: auto then evaluates whole)."""
    layers = sorted({layer for t in losses for layer in t.loss.layers})
    if not layers or not all(tileable(t.loss) for t in losses):
        return None
    return backend.tiling(layers)


def cheapest(backend, optimizer, losses, tiling, shape: Shape, style_shapes, limit: int,
             iterations: int | None = None) -> Tiles | None:
    """The tiling of least ``work`` whose peak fits ``limit``, or None when none does (cores down to
    ``SMALL_CORE``). For each number of rows, the fewest columns that fit (memory falls as columns
    are added, work grows), found by ``memory.last_fitting``: a few dozen estimates even at print sizes."""
    h, w = int(shape[0]), int(shape[1])
    stride = tiling.stride
    smallest = max(SMALL_CORE, stride)

    def tiles_for(rows: int, cols: int) -> Tiles:
        return make_tiles(tiling, (math.ceil(h / rows / stride) * stride, math.ceil(w / cols / stride) * stride))

    def fits(tiles: Tiles) -> bool:
        return memory.within(lambda: tiled_bytes(backend, optimizer, losses, tiles, shape, style_shapes,
                                                 iterations), limit)

    best = None
    most_cols = max(1, math.ceil(w / smallest))
    for rows in range(1, max(1, math.ceil(h / smallest)) + 1):
        low = 2 if rows == 1 else 1  # one tile of everything is not a tiling
        if low > most_cols or not fits(tiles_for(rows, most_cols)):
            continue
        # The fewest columns that fit: counted down from the most, the last that still fits.
        fewer = memory.last_fitting(lambda k: fits(tiles_for(rows, most_cols - k)), 0, most_cols - low)
        tiles = tiles_for(rows, most_cols - fewer)
        if best is None or work(tiles, shape) < work(best, shape):
            best = tiles
    return best


def check_tiled_fits(backend, optimizer, style_scale: float, losses, tiles: Tiles, shape: Shape,
                     style_shapes: Sequence[Shape], iterations: int | None = None) -> int | None:
    """The tiled estimate of a level, refused (ResourceError) when over the limit; None when the
    check is off. The refusal names the largest length that fits *tiled* (in the smallest tiles)."""
    limit = memory.memory_limit()
    if limit is None:
        return None
    needed = tiled_bytes(backend, optimizer, losses, tiles, shape, style_shapes, iterations)
    if needed is None or needed <= limit[0]:
        return needed
    small = make_tiles(tiles.tiling, max(SMALL_CORE, tiles.tiling.stride), tiles.halo)

    def at(length: int) -> int | None:
        return tiled_bytes(backend, optimizer, losses, small, *sizes_at(length, shape, style_shapes, style_scale),
                           iterations)

    low = memory.largest_length(at, limit[0], max(shape[:2]))
    advice = f"--length {low} would fit tiled" if low is not None else "no --length would fit, even tiled"
    grid = tiles.grid(shape)
    how = grid.describe() if grid.counts != (1, 1) else "in one tile"
    raise memory.refusal(f"a {shape[1]}x{shape[0]} px run {how}", needed, memory.terms_note(losses, shape), limit,
                         advice)
