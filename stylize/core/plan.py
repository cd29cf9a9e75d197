"""The run plan: every size and iteration count of a run, worked out once from the inputs and settings.

Everything that needs a size reads it here: the pre-run checks, the memory
estimate, the level loop, the ETA and the drivers that show a plan before
running it. A level is one optimization at one resolution (coarse to fine),
starting from the previous level's result scaled up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .errors import ImageError, UsageError
from .images import check_working_size, fit_long_side
from .initial import first_level
from .schedule import scale_lengths, split_iterations

if TYPE_CHECKING:
    from .settings import Settings

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
    #: How the objective is evaluated: ``WHOLE`` here; whether a level is tiled needs the
    #: network and the memory limit, so ``Pipeline.tiles`` decides it (``Estimate.tiles`` says it).
    evaluation: str = WHOLE

    @property
    def last_step(self) -> int:
        return self.first_step + self.iterations

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]


@dataclass(frozen=True)
class Plan:
    levels: tuple[Level, ...]

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
    lengths = scale_lengths(max(content_shape[:2]), settings.scales)
    budgets = split_iterations(settings.iterations, len(lengths))
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


def sizes_at(length: int, content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
             style_scale: float) -> tuple[Shape, tuple[Shape, ...]]:
    """(output shape, style shapes) when the output's long side is ``length``: the one rule for both."""
    style_length = max(1, round(length * style_scale))
    return (fit_long_side(tuple(content_shape[:2]), length),
            tuple(fit_long_side(tuple(s[:2]), style_length) for s in style_shapes))


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
