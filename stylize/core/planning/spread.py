"""A tiled level spread over a cluster's workers (``--scheduler``): tiles that fit the smallest worker and this
process, at least one per worker; the plan asks the cluster (``stylize.core.evaluation.remote``) for its workers."""
from __future__ import annotations

from typing import Sequence

from ..errors import ResourceError, StylizeError
from ..evaluation.remote import Machines, remote_for
from ..evaluation.tiling import Tiles
from . import memory
from .tile_memory import client_bytes, worker_bytes
from .tile_search import SMALL_CORE, cheapest, count


def machines_for(settings, tiling) -> Machines | None:
    """The cluster's workers for a run that names a scheduler and can be tiled; None: every level runs here."""
    elsewhere = remote_for(settings) if tiling is not None else None
    return None if elsewhere is None else elsewhere.machines()


def spread(level, tiles: Tiles | None, variants: Sequence, backend, losses, limit: tuple[int, str] | None,
           machines: Machines, tiling, auto: bool) -> tuple[Tiles, int, int | None] | None:
    """(the level's tiles, the workers they run on, each one's expected peak bytes), or None: the level runs
    here (a level with room for fewer cores of ``SMALL_CORE`` px than workers, or no tiling that fits).

    ``tiles``: those ``--tile-size N`` gives the level (refused, ResourceError, when a worker cannot hold
    one); else with ``auto`` the cheapest tiling into at least as many tiles as workers (two at least)
    that fits the smallest worker's memory and this process's ``limit`` (``client_bytes``) with one of the
    optimizer ``variants``.
    """
    shape, style_shapes = level.shape, level.style_shapes
    smallest = machines.smallest

    def on_worker(t: Tiles) -> int | None:
        try:
            return worker_bytes(backend, losses, t, shape, style_shapes)
        except StylizeError:  # a size Caffe refuses: no worker fits it
            return None

    if tiles is None:
        least = max(2, machines.count)
        if not auto or tiling is None or (shape[0] // SMALL_CORE) * (shape[1] // SMALL_CORE) < least:
            return None  # smaller tiles would be mostly halo: the level is quicker here

        def here(t: Tiles) -> bool:
            return limit is None or any(memory.within(lambda: client_bytes(backend, opt, losses, t, shape,
                                                                           style_shapes, level.iterations), limit[0])
                                        for opt, _ in variants)

        def fits(t: Tiles) -> bool:
            return (smallest is None or memory.within(lambda: on_worker(t), smallest)) and here(t)

        tiles = cheapest(tiling, shape, fits, least)
        if tiles is None:
            return None
    needed = on_worker(tiles)
    if smallest is not None and needed is not None and needed > smallest:
        raise ResourceError(f"not enough memory on the cluster's workers: a {shape[1]}x{shape[0]} px level "
                            f"{tiles.grid(shape).describe()} needs about {memory.format_bytes(needed)} on each worker "
                            f"(estimated), the smallest of {machines.count} has {memory.format_bytes(smallest)} "
                            "(of its limit, where Dask would pause it); use a smaller --tile-size, or auto")
    return tiles, min(machines.count, count(tiles, shape)), needed
