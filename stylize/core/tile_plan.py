"""Which levels of a run are tiled, and how: the ``tile_size`` setting against the memory limit.

``auto`` leaves a level whole when its whole-image run fits the memory
limit (``stylize.core.memory``); otherwise it takes the cheapest tiling
whose peak fits: the fewest input pixels run through the network per
evaluation, halos and the second pass counted, so few large tiles (strips
where they fit) win over many small ones. A number N gives cores of at most
N x N pixels at every level larger than that; ``off`` never tiles.

A tiled level's memory no longer grows with the network's activations: it
is one tile's peak (``Backend.estimate_peak_bytes`` at the largest tile)
plus what stays image-sized: the content targets, the Gram statistics, the
region masks at each style layer, the image-sized arrays around the
objective, the optimizer's state and what the terms hold (``Loss.memory_bytes``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from . import memory
from .contracts import Backend, Optimizer, tileable
from .errors import ResourceError, StylizeError, UsageError
from .objective import WeightedLoss
from .plan import Plan, sizes_at
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
#: Measured (bench/tiling.py): without them the estimate was 3.5% (1024 px, 2x1 tiles) and
#: 7.6% (4096 px, 3x2 tiles) under the peak.
TILE_FEATURE_COPIES = 1.0
#: A float64 Gram statistic is held three times per style layer (the sums, one tile's, the target).
GRAM_COPIES = 3
#: The smallest cores ``auto`` tries, and those a refusal's "largest length that fits" assumes (pixels).
SMALL_CORE = 256


def tiled_bytes(backend: Backend, optimizer: Optimizer, losses: Sequence[WeightedLoss], tiles: Tiles,
                shape: Shape, style_shapes: Sequence[Shape], regions: int = 0,
                iterations: int | None = None) -> int | None:
    """Estimated peak resident memory (bytes) of a level evaluated in ``tiles``, or None if unknown.

    ``regions``: the semantic regions of the masks (0 without masks); ``iterations``: the level's,
    the most the optimizer runs (``memory.optimizer_bytes``).
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
    grams = sum(channels.get(layer, 0) ** 2 * 8 * GRAM_COPIES for layer in layers("style")) * max(1, regions)
    masks = regions * sum(math.prod(full[layer]) * 4 for layer in layers("style"))
    variables = 3 * int(shape[0]) * int(shape[1])
    state = memory.optimizer_bytes(optimizer, variables, iterations)
    terms = memory.terms_bytes(losses, shape)  # image-sized whatever the tiles (the affine term's Laplacian)
    return network + int(copies) + targets + grams + masks + IMAGE_COPIES * 4 * variables + int(state) + terms


def work(tiles: Tiles, shape: Shape) -> int:
    """Pixels run through the network per evaluation, counting a forward and a backward as one each:
    every tile twice forward (the last once) and once backward; what ``auto`` minimizes."""
    grid = tiles.grid(shape)
    last = grid.tiles()[-1].span_shape
    return 3 * grid.pixels() - last[0] * last[1]


def _fits(needed, limit: int) -> bool:
    try:
        value = needed()
    except StylizeError:  # e.g. a tile too large for Caffe
        return False
    return value is not None and value <= limit


def cheapest(backend, optimizer, losses, tiling, shape: Shape, style_shapes, limit: int,
             regions: int = 0, iterations: int | None = None) -> Tiles | None:
    """The tiling of least ``work`` whose peak fits ``limit``, or None when none does (cores down to
    ``SMALL_CORE``). For each number of rows, the fewest columns that fit (memory falls as columns
    are added, work grows), found by bisection: a few dozen estimates even at print sizes."""
    h, w = int(shape[0]), int(shape[1])
    stride = tiling.stride
    smallest = max(SMALL_CORE, stride)

    def tiles_for(rows: int, cols: int) -> Tiles:
        return make_tiles(tiling, (math.ceil(h / rows / stride) * stride, math.ceil(w / cols / stride) * stride))

    def fits(tiles: Tiles) -> bool:
        return _fits(lambda: tiled_bytes(backend, optimizer, losses, tiles, shape, style_shapes, regions,
                                         iterations), limit)

    best = None
    most_cols = max(1, math.ceil(w / smallest))
    for rows in range(1, max(1, math.ceil(h / smallest)) + 1):
        low, high = (2 if rows == 1 else 1), most_cols  # one tile of everything is not a tiling
        if low > high or not fits(tiles_for(rows, high)):
            continue
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if fits(tiles_for(rows, middle)) else (middle + 1, high)
        tiles = tiles_for(rows, low)
        if best is None or work(tiles, shape) < work(best, shape):
            best = tiles
    return best


@dataclass(frozen=True)
class Choice:
    """How one level runs: its tiling (None: the whole image at once) and its optimizer, with what the
    plan line says of that optimizer when it is not the one the settings name (``note``)."""

    tiles: Tiles | None
    optimizer: Optimizer
    note: str | None = None


def plan_levels(backend: Backend, optimizer: Optimizer, settings, losses: Sequence[WeightedLoss], plan: Plan,
                regions: int = 0) -> tuple[Choice, ...]:
    """For each level of ``plan``: its tiling and its optimizer (``optimizer`` or its ``smaller()`` variant).

    Under the memory limit, in this order: the whole image with ``optimizer``;
    the whole image with the smaller variant (float32 L-BFGS); else the
    tiling of least ``work`` over both, ``optimizer`` on equal work. Tiling
    costs 1.13x to 2x per evaluation (bench/tiling.py); the float32 L-BFGS
    costs no more evaluations or time per iteration (its own work is a few
    passes over the image, 0.08 us per variable against scipy's 0.85 on a
    bounded quadratic) and 1-3% more iterations for scipy's objective
    (VGG19, 100 iterations: 0.4% above it at 256 px, 0.3% at 512; 128 px,
    30 iterations: 4% below; bench/lbfgs_precision.py), less than tiling's
    least overhead, so fewer pixels through the network win.
    Where nothing fits, the smallest variant is chosen so that the refusal
    names the largest length that fits with it.

    Raises UsageError for a ``tile_size`` this run cannot use (a backend or a
    loss that cannot be tiled), ResourceError when ``auto`` finds no tiling
    that fits (with the largest length that would).
    """
    setting = settings.tile_size
    fixed = None
    if isinstance(setting, int):
        _check_losses(losses)  # first: a loss without the interface makes _tiling None too
        tiling = _tiling(backend, losses)
        if tiling is None:
            raise UsageError(f"backend {settings.backend!r} cannot be evaluated in tiles (its network mixes "
                             "all positions, or it does not say how); use --tile-size off")
        fixed = make_tiles(tiling, setting)
    else:
        tiling = None if setting == "off" else _tiling(backend, losses)
    limit = memory.memory_limit()
    variants = _variants(optimizer)
    out = []
    for level in plan.levels:
        tiles = fixed if fixed is not None and (max(level.shape) > setting or
                                                 any(max(s) > setting for s in level.style_shapes)) else None

        def needed(opt: Optimizer, tiles=tiles, level=level):
            if tiles is None:
                return memory.estimate_run_bytes(backend, opt, level.shape, level.style_shapes, losses,
                                                 level.iterations)
            return tiled_bytes(backend, opt, losses, tiles, level.shape, level.style_shapes, regions, level.iterations)

        if limit is None:
            out.append(Choice(tiles, optimizer))
            continue
        fitting = [Choice(tiles, opt, note) for opt, note in variants if _fits(lambda: needed(opt), limit[0])]
        if not fitting and setting == "auto" and tiling is not None:
            fitting = sorted((Choice(t, opt, note) for opt, note in variants
                              for t in [cheapest(backend, opt, losses, tiling, level.shape, level.style_shapes,
                                                 limit[0], regions, level.iterations)] if t is not None),
                             key=lambda choice: work(choice.tiles, level.shape))  # stable: float64 on ties
        out.append(fitting[0] if fitting else Choice(tiles, *variants[-1]))
    return tuple(out)


def _variants(optimizer: Optimizer) -> list[tuple[Optimizer, str | None]]:
    """``optimizer`` and, if it has one, its smaller variant with the plan line's note."""
    smaller = getattr(optimizer, "smaller", None)
    variant = smaller() if smaller is not None else None
    return [(optimizer, None)] + ([variant] if variant is not None else [])


def _tiling(backend: Backend, losses: Sequence[WeightedLoss]):
    """The backend's ``Tiling`` of the layers the losses read; None when the run cannot be tiled
    (the network, or a loss without ``TiledLoss``: auto then evaluates whole)."""
    layers = sorted({layer for t in losses for layer in t.loss.layers})
    if not layers or not all(tileable(t.loss) for t in losses):
        return None
    return backend.tiling(layers)


def _check_losses(losses: Sequence[WeightedLoss]) -> None:
    from .tiled_objective import check_tileable
    check_tileable(losses)


def check_tiled_fits(backend, optimizer, settings, losses, tiles: Tiles | None, shape: Shape,
                     style_shapes: Sequence[Shape], regions: int = 0, iterations: int | None = None) -> int | None:
    """The tiled estimate of the final level, refused (ResourceError) when over the limit; None when
    it is not tiled or the check is off. The refusal names the largest length that fits *tiled*."""
    limit = memory.memory_limit()
    if tiles is None or limit is None:
        return None
    needed = tiled_bytes(backend, optimizer, losses, tiles, shape, style_shapes, regions, iterations)
    if needed is None or needed <= limit[0]:
        return needed
    small = make_tiles(tiles.tiling, max(SMALL_CORE, tiles.tiling.stride), tiles.halo)

    def fits(length: int) -> bool:
        out, styles = sizes_at(length, shape, style_shapes, settings.style_scale)
        return _fits(lambda: tiled_bytes(backend, optimizer, losses, small, out, styles, regions, iterations),
                     limit[0])

    low = memory.last_fitting(fits, 0, max(shape[:2]) // memory.LENGTH_STEP)  # in steps; 0: nothing fits
    advice = (f"--length {low * memory.LENGTH_STEP} would fit tiled" if low * memory.LENGTH_STEP >= memory.MIN_LENGTH
              else "no --length would fit, even tiled")
    grid = tiles.grid(shape)
    how = grid.describe() if grid.counts != (1, 1) else "in one tile"
    raise ResourceError(f"not enough memory: a {shape[1]}x{shape[0]} px run {how} needs about "
                        f"{memory.format_bytes(needed)} (estimated{memory.terms_note(losses, shape)}), "
                        f"{memory.format_bytes(limit[0])} is {limit[1]}; "
                        f"{advice} (or set {memory.LIMIT_VARIABLE}=off to try anyway)")


def refuse_untileable_fit(backend, optimizer, settings, losses, plan: Plan, regions: int = 0) -> None:
    """When ``auto`` found no tiling for the final level: refuse with the largest length that fits tiled."""
    limit = memory.memory_limit()
    tiling = _tiling(backend, losses)
    if limit is None or tiling is None:
        return
    final = plan.final
    check_tiled_fits(backend, optimizer, settings, losses, make_tiles(tiling, max(SMALL_CORE, tiling.stride)),
                     final.shape, final.style_shapes, regions, final.iterations)


def tiled_flops(backend: Backend, tiles: Tiles, shape: Shape) -> int | None:
    """FLOPs of one tiled evaluation: each tile's forward and backward, and its second forward
    (taken as half of the two) but for the last tile's."""
    spans = [tile.span_shape for tile in tiles.grid(shape).tiles()]
    flops = [backend.estimate_flops(span) for span in spans]
    if any(f is None for f in flops):
        return None
    return int(1.5 * sum(flops) - 0.5 * flops[-1])
