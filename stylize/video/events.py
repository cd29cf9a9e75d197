"""What a video run reports while it works, besides each frame's own Job events."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stylize.core.run.events import Event


@dataclass(frozen=True)
class FramesReady(Event):
    """The source frames are extracted and their flow computed: frames ``first``..``last`` will be stylized."""

    first: int
    last: int
    #: Frames that start a shot (the first, and after each cut the flow could not follow).
    shot_starts: tuple[int, ...]
    #: Frames already stylized by an earlier, interrupted run.
    done: int


@dataclass(frozen=True)
class FrameStarted(Event):
    frame: int
    last: int
    #: Starts a shot: no temporal term, the run's own init and all ``iterations``.
    shot_start: bool
    iterations: int


@dataclass(frozen=True)
class FrameFinished(Event):
    frame: int
    last: int
    path: Path
    seconds: float
    #: Seconds left for the remaining frames, from the frames timed so far (None before any).
    eta: float | None
    #: Already stylized by an earlier run.
    skipped: bool = False


@dataclass(frozen=True)
class VideoFinished(Event):
    output: Path
    frames: int
    seconds: float
