"""What a tiled level holds in memory: in this process (tiles and the image-sized rest) and on a cluster's worker.

A tiled level's memory no longer grows with the network's activations: it
is one tile's peak (``Backend.estimate_peak_bytes`` at the largest tile)
plus what stays image-sized: the content targets, the Gram statistics, the
image-sized arrays around the objective, the optimizer's state and what the
terms hold (``Loss.memory_bytes``). A cluster's worker (``--scheduler``)
holds the tile's peak and the level's targets, never the image, the
optimizer or the image terms.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..contracts import Backend, Optimizer
from ..evaluation.objective import WeightedLoss
from ..evaluation.tiling import Tiles
from . import memory

Shape = Sequence[int]

#: Float32 image-sized arrays (3 x H x W) a tiled run holds at its peak besides the optimizer's own:
#: the working x, its gradient, the bounds (2), the level's content and start images, the
#: best and the latest x reported, and the image an image term or a checkpoint deprocesses
#: (with its temporaries).
IMAGE_COPIES = 12
#: Float32 image-sized arrays a cluster client (``--scheduler``) holds at its peak besides the optimizer's
#: declared state: measured by bench/cluster_client.py (12.1 at 3072 px with Adam, whose own five arrays it
#: does not declare; 11.2 with L-BFGS), the inputs, the start and the gradient with the image terms' temporaries.
CLIENT_IMAGE_COPIES = 12.5
#: Feature-sized float32 arrays per layer read, of the largest tile, that a tiled evaluation holds
#: beyond what ``Backend.estimate_peak_bytes`` counts: the losses' contiguous copies of a core (a
#: view into the tile) and the tile-sized gradient arrays the cores' gradients are put into.
#: Chosen by bench/tiling.py (peak against estimate).
TILE_FEATURE_COPIES = 1.0
#: A float64 Gram statistic is held three times per style layer (the sums, one tile's, the target).
GRAM_COPIES = 3
#: What a Dask worker process holds beyond the network's process (Dask itself, its messages): an idle
#: `dask worker` is 62 MB resident; counted with room for the tiles' pixels and the totals in flight.
DASK_WORKER_BYTES = 150 * 2 ** 20


def _parts(backend: Backend, losses: Sequence[WeightedLoss], tiles: Tiles, shape: Shape,
           style_shapes: Sequence[Shape]) -> dict[str, int] | None:
    """What a level in ``tiles`` holds by part: ``tile``, one tile's network peak (with the process the
    backend runs in) and its feature copies; ``targets``, the whole level's content targets; ``grams``, the
    Gram statistics (None: the backend cannot tell)."""
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
    return {"tile": network + int(copies),
            "targets": sum(channels.get(layer, 0) * math.prod(full[layer]) * 4 for layer in layers("content")),
            "grams": sum(channels.get(layer, 0) ** 2 * 8 * GRAM_COPIES for layer in layers("style"))}


def _image_bytes(optimizer: Optimizer, losses: Sequence[WeightedLoss], shape: Shape, iterations: int | None,
                 copies: float = IMAGE_COPIES) -> int:
    """The image-sized arrays around the objective (``copies`` of them), the optimizer's state and what the
    terms hold."""
    variables = 3 * int(shape[0]) * int(shape[1])
    state = memory.optimizer_bytes(optimizer, variables, iterations)
    terms = memory.terms_bytes(losses, shape)  # image-sized whatever the tiles (the affine term's Laplacian)
    return int(copies * 4 * variables) + int(state) + terms


def tiled_bytes(backend: Backend, optimizer: Optimizer, losses: Sequence[WeightedLoss], tiles: Tiles,
                shape: Shape, style_shapes: Sequence[Shape], iterations: int | None = None) -> int | None:
    """Estimated peak resident memory (bytes) of this process for a level evaluated here in ``tiles``, or
    None if unknown.

    ``iterations``: the level's, the most the optimizer runs (``memory.optimizer_bytes``).
    """
    parts = _parts(backend, losses, tiles, shape, style_shapes)
    if parts is None:
        return None
    return sum(parts.values()) + _image_bytes(optimizer, losses, shape, iterations)


def client_bytes(backend: Backend, optimizer: Optimizer, losses: Sequence[WeightedLoss], tiles: Tiles,
                 shape: Shape, style_shapes: Sequence[Shape], iterations: int | None = None) -> int | None:
    """Estimated peak resident memory of this process for a level whose tiles (targets and evaluations) run
    on a cluster's workers: the network loaded but not run (its process at the smallest input), the
    statistics, a client's image-sized arrays and the optimizer's state; the content targets stay on the
    workers (``stylize.cluster.targets``)."""
    parts = _parts(backend, losses, tiles, shape, style_shapes)
    process = backend.estimate_peak_bytes(backend.smallest_input())
    if parts is None or process is None:
        return None
    return process + parts["grams"] + _image_bytes(optimizer, losses, shape, iterations, CLIENT_IMAGE_COPIES)


def worker_bytes(backend: Backend, losses: Sequence[WeightedLoss], tiles: Tiles, shape: Shape,
                 style_shapes: Sequence[Shape]) -> int | None:
    """Estimated peak resident memory of a cluster worker evaluating ``tiles`` of a level: a tile's network
    pass, the level's targets (counted whole: a worker holds the content targets of the tiles it made and
    of those whose tasks it ran) and Dask's own."""
    parts = _parts(backend, losses, tiles, shape, style_shapes)
    return None if parts is None else sum(parts.values()) + DASK_WORKER_BYTES
