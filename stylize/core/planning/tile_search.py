"""What a tiling costs (pixels through the network, FLOPs) and the cheapest one that fits.

The run plan (``stylize.core.planning.plan``) decides which levels are tiled; this
module prices a tiling and searches the one of least work among those a
predicate accepts (the memory of this process, of a cluster's workers, and
how many tiles there must at least be).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from ..contracts import Backend, tileable
from ..evaluation.objective import WeightedLoss
from ..evaluation.tiling import Tiles, make_tiles
from . import memory

Shape = Sequence[int]

#: The smallest cores ``auto`` tries, and those a refusal's "largest length that fits" assumes (pixels).
SMALL_CORE = 256


def work(tiles: Tiles, shape: Shape) -> int:
    """Pixels run through the network per evaluation, counting a forward and a backward as one each:
    every tile twice forward (the last once) and once backward; what ``auto`` minimizes."""
    grid = tiles.grid(shape)
    last = grid.tiles()[-1].span_shape
    return 3 * grid.pixels() - last[0] * last[1]


def count(tiles: Tiles, shape: Shape) -> int:
    """How many tiles ``tiles`` cuts an image of ``shape`` into."""
    return math.prod(tiles.grid(shape).counts)


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


def cheapest(tiling, shape: Shape, fits: Callable[[Tiles], bool], least: int = 2) -> Tiles | None:
    """The tiling of least ``work`` into at least ``least`` tiles that ``fits`` accepts, or None (cores down
    to ``SMALL_CORE``). For each number of rows, the fewest columns that fit (memory falls as columns
    are added, work grows), found by ``memory.last_fitting``: a few dozen estimates even at print sizes."""
    h, w = int(shape[0]), int(shape[1])
    stride = tiling.stride
    smallest = max(SMALL_CORE, stride)

    def tiles_for(rows: int, cols: int) -> Tiles:
        return make_tiles(tiling, (math.ceil(h / rows / stride) * stride, math.ceil(w / cols / stride) * stride))

    def accepted(tiles: Tiles) -> bool:
        return count(tiles, shape) >= least and fits(tiles)

    best = None
    most_cols = max(1, math.ceil(w / smallest))
    for rows in range(1, max(1, math.ceil(h / smallest)) + 1):
        low = max(2 if rows == 1 else 1, math.ceil(least / rows))  # one tile of everything is not a tiling
        if low > most_cols or not accepted(tiles_for(rows, most_cols)):
            continue
        # The fewest columns that fit: counted down from the most, the last that still fits.
        fewer = memory.last_fitting(lambda k: accepted(tiles_for(rows, most_cols - k)), 0, most_cols - low)
        tiles = tiles_for(rows, most_cols - fewer)
        if best is None or work(tiles, shape) < work(best, shape):
            best = tiles
    return best
