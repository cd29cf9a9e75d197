"""A tiled level over the memory limit, refused in one line that names the largest length that fits tiled."""
from __future__ import annotations

from typing import Sequence

from ..evaluation.tiling import Tiles, make_tiles
from ..request.schedule import sizes_at
from . import memory
from .tile_memory import tiled_bytes
from .tile_search import SMALL_CORE

Shape = Sequence[int]


def check_tiled_fits(backend, optimizer, style_scale: float, losses, tiles: Tiles, shape: Shape,
                     style_shapes: Sequence[Shape], iterations: int | None = None,
                     estimate=tiled_bytes) -> int | None:
    """The tiled estimate of a level, refused (ResourceError) when over the limit; None when the
    check is off. The refusal names the largest length that fits *tiled* (in the smallest tiles).
    ``estimate``: ``tiled_bytes``, or ``client_bytes`` for a level on a cluster."""
    limit = memory.memory_limit()
    if limit is None:
        return None
    needed = estimate(backend, optimizer, losses, tiles, shape, style_shapes, iterations)
    if needed is None or needed <= limit[0]:
        return needed
    small = make_tiles(tiles.tiling, max(SMALL_CORE, tiles.tiling.stride), tiles.halo)

    def at(length: int) -> int | None:
        return estimate(backend, optimizer, losses, small, *sizes_at(length, shape, style_shapes, style_scale),
                        iterations)

    low = memory.largest_length(at, limit[0], max(shape[:2]))
    advice = f"--length {low} would fit tiled" if low is not None else "no --length would fit, even tiled"
    grid = tiles.grid(shape)
    how = grid.describe() if grid.counts != (1, 1) else "in one tile"
    raise memory.refusal(f"a {shape[1]}x{shape[0]} px run {how}", needed, memory.terms_note(losses, shape), limit,
                         advice)
