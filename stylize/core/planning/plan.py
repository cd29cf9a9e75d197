"""The run plan: every level's size, iterations, evaluation, optimizer and costs, worked out once.

Everything that needs one reads it here: the pre-run checks, the memory
check, the level loop, the ETA and the drivers that show a plan before
running it (one text for all: ``stylize.core.run.plan_text``). A level is one
optimization at one resolution (coarse to fine), starting from the previous
level's result scaled up. ``make_plan`` gives the sizes (no network needed:
what a Job refuses before loading one); ``complete`` adds, from the loaded
plugins and the memory limit, how each level is evaluated (whole or in
tiles), which optimizer runs it, and its bytes, FLOPs and seconds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import ImageError, ResourceError, StylizeError, UsageError
from ..evaluation.tiling import Tiles, make_tiles
from ..io.images import check_working_size
from ..request.initial import first_level
from ..request.schedule import scale_lengths, sizes_at, split_iterations, step_ratio
from . import memory, speed
from .spread import machines_for, spread
from .tile_memory import client_bytes, tiled_bytes
from .tile_refusal import check_tiled_fits
from .tile_search import SMALL_CORE, cheapest, count, tiled_flops, tiling_of, work

if TYPE_CHECKING:
    from ..contracts import Backend, Optimizer
    from ..evaluation.objective import WeightedLoss
    from ..request.settings import Settings

__all__ = ["Level", "Plan", "make_plan", "complete", "sizes_at", "check_working_sizes", "check_network_sizes"]

Shape = tuple[int, int]

#: How a level's objective is evaluated: the whole image in one network pass.
WHOLE = "whole"


@dataclass(frozen=True)
class Level:
    """One coarse-to-fine level: its sizes (H, W) and its share of the iterations."""

    index: int
    #: Long side of the output at this level.
    length: int
    #: (height, width) of the output at this level.
    shape: Shape
    #: (height, width) of each style image at this level (``length`` times the style scale).
    style_shapes: tuple[Shape, ...]
    iterations: int
    #: Iterations of the whole run done before this level starts.
    first_step: int
    #: How the objective is evaluated: None, the whole image in one pass, or these tiles (``--tile-size``).
    tiles: Tiles | None = None
    #: The optimizer that runs this level: the settings' one, or its smaller variant where only that fits
    #: the memory limit (``Optimizer.smaller``), with what the plan says of it then (``optimizer_note``).
    optimizer: "Optimizer | None" = None
    optimizer_note: str | None = None
    #: The arithmetic its evaluations run in ("" the backend's ordinary, or e.g. "bf16": ``Backend.arithmetic``).
    arithmetic: str = ""
    #: Expected peak resident bytes of the process, FLOPs of one evaluation, seconds of one iteration
    #: (at the machine's recorded rate, ``stylize.core.planning.speed``); None where unknown.
    bytes: int | None = None
    flops: int | None = None
    iteration_seconds: float | None = None
    #: The cluster's workers its tiles' passes are spread over (``--scheduler``), each expected to peak at
    #: ``worker_bytes``; 0: they run in this process.
    machines: int = 0
    worker_bytes: int | None = None

    @property
    def evaluation(self) -> str:
        """``whole``, or its tiling, e.g. ``tiled 3x2, 512x512 px tiles (80 px halo)``."""
        return WHOLE if self.tiles is None else self.tiles.grid(self.shape).describe()

    @property
    def last_step(self) -> int:
        return self.first_step + self.iterations

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass(frozen=True)
class Plan:
    levels: tuple[Level, ...]
    #: Peak resident bytes the run is expected to need (its last level's), the limit it was checked
    #: against and where that figure comes from (None: not checked); the whole run's expected seconds.
    memory_bytes: int | None = None
    memory_limit: int | None = None
    memory_source: str | None = None
    seconds: float | None = None
    #: The cluster's workers (``--scheduler``; 0: none) and the smallest one's memory limit (None: not said).
    workers: int = 0
    worker_limit: int | None = None

    @property
    def iterations(self) -> int:
        return self.levels[-1].last_step

    @property
    def final(self) -> Level:
        return self.levels[-1]

    @property
    def coarsest(self) -> Level:
        return self.levels[0]

    def remaining(self, step: int) -> list[tuple[Level, int]]:
        """``(level, iterations already done in it)`` for each level not finished after ``step``.

        A resumed run starts at ``step``; the last level is always kept (it
        turns the working image into the output even with nothing left to do).
        """
        return [(level, max(0, min(level.iterations, step - level.first_step))) for level in self.levels
                if step < level.last_step or level is self.final]


def make_plan(settings: "Settings", content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
              level_iterations: Sequence[int] | None = None) -> Plan:
    """The plan of a run whose content is ``content_shape`` (H, W) at output size.

    Style images are scaled to ``settings.style_scale`` times each level's
    long side, from their working size (as ``inputs.load_inputs`` made it).
    ``level_iterations`` (coarse first) replaces the automatic split of
    ``settings.iterations``, in which the levels before the start's
    (``StartImage.first_level``) have none.
    """
    lengths = scale_lengths(max(content_shape[:2]), settings.scales, settings.ladder)
    budgets = split_iterations(settings.iterations, len(lengths), step_ratio(settings.ladder))
    skipped = first_level(settings, len(lengths))  # a start with the coarse structure skips coarse levels
    budgets = [0] * skipped + budgets[skipped:]
    if level_iterations is not None:
        if len(level_iterations) != len(lengths) or any(n < 0 for n in level_iterations):
            raise UsageError(f"{len(level_iterations)} iteration counts for {len(lengths)} levels; "
                             "give one count (0 or more) per level")
        budgets = [int(n) for n in level_iterations]
    levels, done = [], 0
    for index, (length, iterations) in enumerate(zip(lengths, budgets)):
        shape, styles = sizes_at(length, content_shape, style_shapes, settings.style_scale)
        levels.append(Level(index, length, shape, styles, iterations, done))
        done += iterations
    return Plan(tuple(levels))


def check_working_sizes(plan: Plan, content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
                        content_name: str, style_names: Sequence[str]) -> None:
    """Every image keeps a short side stylize can work on, at the output's size and the coarsest level.

    Needs no network: refused before one is loaded, with the image's name.
    """
    coarsest = plan.coarsest.length / plan.final.length
    check_working_size(content_shape, f"content image {content_name}", coarsest)
    for name, shape in zip(style_names, style_shapes):
        check_working_size(shape, f"style image {name}", coarsest)


def check_network_sizes(plan: Plan, smallest: tuple[int, int], backend: str) -> None:
    """Every image, at the coarsest level, is at least the network's smallest input (else ImageError)."""
    low_h, low_w = smallest
    level = plan.coarsest
    for name, (h, w) in (("content image", level.shape), *(("style image", s) for s in level.style_shapes)):
        if h < low_h or w < low_w:
            several = len(plan.levels) > 1
            where = "at the coarsest scale" if several else "at this --length"
            fix = "use fewer --scales or a larger --length" if several else "use a larger --length"
            raise ImageError(f"the {name} would be {w}x{h} px {where}, but backend {backend!r} "
                             f"needs at least {low_w}x{low_h}: {fix}")


def complete(plan: Plan, settings: "Settings", backend: "Backend", losses: Sequence["WeightedLoss"],
             optimizer: "Optimizer") -> Plan:
    """The whole plan: ``plan``'s sizes, and for each level how it is evaluated, which optimizer runs
    it, its arithmetic, bytes, FLOPs and seconds; the run's memory and seconds are its sum.

    Under the memory limit each level takes, in this order: the whole image
    with ``optimizer``; the whole image with its smaller variant (float32
    L-BFGS: no more evaluations nor time per iteration, bench/lbfgs_precision.py);
    else (``--tile-size auto``) the tiling of least ``tile_search.work`` over
    both, ``optimizer`` on equal work, since tiling costs more per evaluation
    (bench/tiling.py). A number N tiles every level larger than N; ``off`` never.
    With a scheduler (``--scheduler``), a level large enough runs on the
    cluster's workers in tiles that fit them (``spread.spread``), its seconds
    divided among them. Raises UsageError for a ``tile_size`` this run cannot use, ResourceError
    when the run cannot fit (naming the largest length that would).
    """
    # First: no tiling shrinks what a term keeps for the whole image (the affine term's Laplacian).
    memory.check_terms_fit(losses, plan.final.shape, plan.final.style_shapes, settings.style_scale)
    tiling, fixed = _tiling(settings, backend, losses)
    limit = memory.memory_limit()
    machines = machines_for(settings, tiling)
    smaller = getattr(optimizer, "smaller", None)  # optional in the Optimizer contract
    variants = [(optimizer, None), *filter(None, [smaller() if smaller is not None else None])]
    levels = []
    for level in plan.levels:
        larger = max(level.shape + sum(level.style_shapes, ()))  # than --tile-size N: tiled
        tiles = fixed if fixed is not None and larger > settings.tile_size else None
        auto = tiling if settings.tile_size == "auto" else None
        spread_over = None if machines is None else spread(level, tiles, variants, backend, losses, limit,
                                                           machines, tiling, auto is not None)
        if spread_over is not None:
            tiles, auto = spread_over[0], None
        tiles, opt, note, bytes_needed = _choose(level, tiles, variants, backend, losses, limit, auto,
                                                 client_bytes if spread_over is not None else tiled_bytes)
        flops = backend.estimate_flops(level.shape) if tiles is None else tiled_flops(backend, tiles, level.shape)
        arithmetic = backend.arithmetic(level.shape)
        seconds = None if flops is None else flops / speed.rate(settings.backend, settings.threads, arithmetic)
        on = {}
        if spread_over is not None:  # the slowest worker's share of the tiles: ceil(T / N) of T
            on = {"machines": spread_over[1], "worker_bytes": spread_over[2]}
            n = count(tiles, level.shape)
            seconds = None if seconds is None else seconds * math.ceil(n / spread_over[1]) / n
        levels.append(dataclasses.replace(level, tiles=tiles, optimizer=opt, optimizer_note=note,
                                          arithmetic=arithmetic, bytes=bytes_needed, flops=flops,
                                          iteration_seconds=seconds, **on))
    _check_final(levels[-1], settings, backend, losses, tiling if limit is not None else None)
    per_iteration = [level.iteration_seconds for level in levels]
    seconds = None
    if all(s is not None for s in per_iteration):
        seconds = plan_cost(plan, per_iteration, 0, plan.iterations)
    return Plan(tuple(levels), memory_bytes=levels[-1].bytes if limit is not None else None,
                memory_limit=None if limit is None else limit[0], memory_source=None if limit is None else limit[1],
                seconds=seconds, workers=0 if machines is None else machines.count,
                worker_limit=None if machines is None else machines.smallest)


def _tiling(settings: "Settings", backend: "Backend", losses) -> tuple:
    """(the run's ``Tiling``, or None where it cannot or may not tile; the fixed ``Tiles`` of ``--tile-size N``)."""
    setting = settings.tile_size
    if not isinstance(setting, int):
        return (None if setting == "off" else tiling_of(backend, losses)), None
    from ..evaluation.tiled_objective import check_tileable
    check_tileable(losses)  # first: a loss without the interface makes the tiling None too
    tiling = tiling_of(backend, losses)
    if tiling is None:
        raise UsageError(f"backend {settings.backend!r} cannot be evaluated in tiles (its network mixes "
                         "all positions, or it does not say how); use --tile-size off")
    return tiling, make_tiles(tiling, setting)


def _choose(level: Level, tiles: Tiles | None, variants, backend, losses, limit, auto_tiling,
            estimate=tiled_bytes) -> tuple:
    """(tiles, optimizer, its note, bytes) of one level: the first variant that fits ``limit`` with
    ``tiles``, else with ``auto_tiling``'s cheapest tiles, else the smallest variant (which the
    final check refuses, naming the largest length that fits with it). ``estimate``: a tiled level's
    bytes here (``client_bytes`` where its tiles run on a cluster)."""

    def needed(opt, tiles=tiles) -> int | None:
        if tiles is None:
            return memory.estimate_run_bytes(backend, opt, level.shape, level.style_shapes, losses, level.iterations)
        return estimate(backend, opt, losses, tiles, level.shape, level.style_shapes, level.iterations)

    choices = [(tiles, opt, note) for opt, note in variants]
    if limit is not None:
        fitting = [c for c in choices if memory.within(lambda: needed(c[1]), limit[0])]
        if not fitting and auto_tiling is not None:
            fitting = sorted(((t, opt, note) for opt, note in variants
                              for t in [cheapest(auto_tiling, level.shape,
                                                 lambda t, opt=opt: memory.within(lambda: needed(opt, t), limit[0]))]
                              if t is not None),
                             key=lambda choice: work(choice[0], level.shape))  # stable: float64 on ties
        choices = fitting or choices[-1:]
    tiles, opt, note = choices[0]
    try:
        return tiles, opt, note, needed(opt, tiles)
    except StylizeError:  # a size Caffe refuses: the final check says so, else the run
        return tiles, opt, note, None


def _check_final(final: Level, settings: "Settings", backend, losses, auto_tiling) -> None:
    """Refuse (ResourceError) a last level over the memory limit, naming the largest length that fits;
    where ``auto`` found no tiling, the largest that fits in the smallest tiles."""
    if final.tiles is not None:
        check_tiled_fits(backend, final.optimizer, settings.style_scale, losses, final.tiles, final.shape,
                         final.style_shapes, final.iterations, client_bytes if final.machines else tiled_bytes)
        return
    try:
        memory.check_fits(backend, settings, final.shape, final.style_shapes, final.optimizer, losses=losses,
                          iterations=final.iterations)
    except ResourceError:
        if settings.tile_size == "auto" and auto_tiling is not None:
            small = make_tiles(auto_tiling, max(SMALL_CORE, auto_tiling.stride))
            check_tiled_fits(backend, final.optimizer, settings.style_scale, losses, small, final.shape,
                             final.style_shapes, final.iterations)
        raise


#: What starting a level costs, in its own iterations: its targets (the content and style
#: images through the network at its size), L-BFGS's first iteration (a line search of
#: several evaluations) and the first calls' warm-up. Chosen by bench/quality.py's drafts.
LEVEL_START_ITERATIONS = 6


def charged_iterations(level: Level, start: int, end: int) -> int:
    """The level's iterations after ``start`` up to ``end``, plus its start where that lies ahead."""
    overlap = min(end, level.last_step) - max(start, level.first_step)
    if overlap <= 0:
        return 0
    return overlap + (LEVEL_START_ITERATIONS if start <= level.first_step else 0)


def plan_cost(plan: Plan, unit: Sequence[float], start: int, end: int) -> float:
    """Cost of the iterations after ``start`` up to ``end``, at ``unit`` per charged iteration of each level."""
    return sum(charged_iterations(level, start, end) * cost for level, cost in zip(plan.levels, unit))
