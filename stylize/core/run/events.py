"""What a running Job tells whoever drives it: one typed event per thing that happened.

A driver (the CLI's progress bar, a web page, a batch runner) passes one
function to ``Job.run`` and receives these, in this order::

    FirstImage    (the picture the run starts from, before the network loads; not on a resume)
    Started
    LevelStarted  (once per level still to run)
        Step ...  (once per optimizer iteration)
        SnapshotWritten / CheckpointWritten  (after the Step they belong to)
    Finished | Failed | Cancelled  (exactly one, last)

Events are frozen dataclasses; their arrays must not be modified. They are
delivered on the thread that runs the job, so a slow handler slows the run:
hand work to another thread if it takes long (a preview encoder, a socket).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..contracts import StepResult
from ..planning.plan import Level, Plan


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to cost, from its plan and the loaded network, before it starts."""

    #: Peak resident memory of the process (bytes); None when the backend cannot tell.
    memory_bytes: int | None
    #: What the machine can give (bytes) and where that figure comes from; None: not checked.
    memory_limit: int | None
    memory_source: str | None
    #: FLOPs of one objective evaluation at each level; None where the backend cannot count.
    level_flops: tuple[int | None, ...]
    #: Expected wall time of the whole run (seconds), from the FLOPs at the machine's recorded rate
    #: for each level's arithmetic (``stylize.core.planning.speed``); None: unknown.
    seconds: float | None
    #: How each level is evaluated: None (the whole image at once) or its tiling, e.g.
    #: ``tiled 3x2, 512x512 px tiles (80 px halo)`` (``--tile-size``).
    tiles: tuple[str | None, ...] = ()
    #: Per level, what the plan changed in the optimizer to fit the memory limit, e.g.
    #: ``L-BFGS history in float32`` (``Optimizer.smaller``); None where it runs as set.
    optimizer_notes: tuple[str | None, ...] = ()
    #: Per level, the arithmetic its evaluations run in ("" the backend's ordinary, or e.g. "bf16":
    #: ``Backend.arithmetic``) and the expected seconds of one iteration there (None: unknown).
    level_arithmetic: tuple[str, ...] = ()
    level_seconds: tuple[float | None, ...] = ()

    #: The complete plan these figures are the sum of (None: a stand-in that made no plan).
    plan: Plan | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, plan: Plan) -> "Estimate":
        """The plan's sum: its memory and seconds, and each level's FLOPs, evaluation, optimizer and arithmetic."""
        levels = plan.levels
        return cls(memory_bytes=plan.memory_bytes, memory_limit=plan.memory_limit, memory_source=plan.memory_source,
                   level_flops=tuple(level.flops for level in levels), seconds=plan.seconds,
                   tiles=tuple(None if level.tiles is None else level.evaluation for level in levels),
                   optimizer_notes=tuple(level.optimizer_note for level in levels),
                   level_arithmetic=tuple(level.arithmetic for level in levels),
                   level_seconds=tuple(level.iteration_seconds for level in levels), plan=plan)

    def level_costs(self) -> tuple:
        """What an iteration at each level costs, for an ETA: its expected seconds where every level
        has them, else its FLOPs (None where unknown)."""
        if self.level_seconds and all(self.level_seconds):
            return self.level_seconds
        return self.level_flops


@dataclass(frozen=True)
class Event:
    """Base class of every event."""


@dataclass(frozen=True)
class FirstImage(Event):
    """The image the optimization starts from (``--init``: the content, or a feed-forward picture), as the
    user sees it, at the size of the first level that runs: made before the network loads, so a driver
    can show a picture at once. Not emitted when resuming (the checkpoint's image is the start)."""

    level: Level
    image: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Started(Event):
    plan: Plan
    estimate: Estimate
    #: Iterations already done (a resumed run starts there).
    first_step: int = 0


@dataclass(frozen=True)
class LevelStarted(Event):
    level: Level
    levels: int


@dataclass(frozen=True)
class Step(Event):
    """One optimizer iteration done."""

    #: Iterations done so far over the whole run (a resumed run counts its earlier ones).
    step: int
    total: int
    #: The level (0 = coarsest) and the number of levels.
    level: int
    levels: int
    #: The objective's value, and each term's share of it (weight times value) from the latest evaluation.
    loss: float
    terms: dict[str, float]
    #: Seconds since this run started, and the expected seconds left (None until it can tell).
    elapsed: float
    eta: float | None
    #: The level ends after this iteration: its objective stopped improving (``tol``).
    converged: bool = False
    #: The current image (HxWx3 RGB in [0, 1]) when a preview was asked for and is due, else None.
    preview: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The optimizer's raw result; ``result.image`` computes the current image on demand.
    result: StepResult | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SnapshotWritten(Event):
    step: int
    path: Path


@dataclass(frozen=True)
class CheckpointWritten(Event):
    step: int
    path: Path


@dataclass(frozen=True)
class Finished(Event):
    #: Where the image was written (None without an output).
    output: Path | None
    #: Wall time of this run, seconds.
    seconds: float
    image: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Failed(Event):
    #: The one-line message a user sees, and the exit code the CLI gives it.
    message: str
    exit_code: int
    error: BaseException = field(repr=False, compare=False)


@dataclass(frozen=True)
class Cancelled(Event):
    """The run stopped before its end: ``Job.cancel()`` (no output written) or Ctrl-C (output written)."""

    #: Iterations done.
    step: int
    #: The checkpoint it can be resumed from (None if none is written).
    checkpoint: Path | None
    #: Where the image reached was written (Ctrl-C), or None (cancel writes no output).
    output: Path | None
    #: "cancelled" (``Job.cancel``) or "interrupted" (Ctrl-C).
    reason: str = "cancelled"
