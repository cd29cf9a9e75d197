"""A video run: extract the frames, compute their flow once, then one ``stylize.Job`` per frame.

Frame n (after the first of its shot) starts from frame n-1's output warped
into it, runs ``frame_iterations`` at full size with the ``temporal`` loss
pulling towards that warped output wherever the flow is reliable (Ruder et
al. 2016), and is written to the work folder before frame n+1 starts, so
an interrupted run continues at the first unfinished frame (and inside it,
from its Job checkpoint). A frame whose flow is reliable almost nowhere is
a cut: it starts a new shot like the first frame. At the end the frames are
encoded at the source's frame rate, with its audio.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from stylize.core.run import checkpoint as checkpoints
from stylize.core.run import colors
from stylize.core.run import events as job_events
from stylize.core.errors import ImageError, UsageError
from stylize.core.io.files import file_digest
from stylize.core.io.images import check_new_output, fit_long_side, load_image, resize, save_image
from stylize.core.io.inputs import Source, one_or_many
from stylize.core.run.job import Cancelled, Job
from stylize.core.request.settings import Settings, settings_from

from . import events, flow
from . import frames as media
from .work import WorkFolder, load_arrays, run_key, save_array

#: A frame whose flow from the previous one is reliable on less than this share of its pixels starts a new shot.
CUT = 0.4


class VideoJob:
    """One video stylized frame by frame; made = checked (options, output, source), ``run`` does the work.

    ``frames=(a, b)`` stylizes frames a..b only (numbered from 1, inclusive;
    either may be None). ``frame_iterations`` are the iterations of every
    frame after the first of its shot (default: ``iterations``).
    ``independent=True`` stylizes every frame on its own (no flow, no
    temporal term): the flickering baseline. ``temporal_weight`` replaces
    the temporal loss's weight. The work folder is removed after the video
    is written unless ``keep_work``.
    """

    def __init__(self, source: str | os.PathLike, style: Source | Sequence[Source], output: str | os.PathLike,
                 settings: Settings | None = None, *, frames: tuple[int | None, int | None] | None = None,
                 frame_iterations: int | None = None, independent: bool = False,
                 temporal_weight: float | None = None, fps: float | None = None, force: bool = False,
                 keep_work: bool = False, checkpoint_every: int = 10, **fields: Any):
        self.settings = settings_from(settings, None, **fields)
        self.settings.validate()
        if "temporal" in self.settings.losses:
            raise UsageError("stylize video adds the temporal loss itself (after each shot's first frame); "
                             "leave it out of --loss and set its weight with --temporal-weight")
        self.frame_iterations = self.settings.iterations if frame_iterations is None else frame_iterations
        if self.frame_iterations < 1:
            raise UsageError(f"frame iterations must be at least 1, got {self.frame_iterations}")
        if temporal_weight is not None and not (temporal_weight >= 0 and np.isfinite(temporal_weight)):
            raise UsageError(f"temporal weight must be 0 or more, got {temporal_weight}")
        self.first, self.last = _range(frames)
        self.independent, self.temporal_weight = independent, temporal_weight
        self.force, self.keep_work, self.checkpoint_every = force, keep_work, checkpoint_every
        self.styles = one_or_many(style)
        self.output = _check_output(output, force)
        if fps is not None and not (fps > 0 and np.isfinite(fps)):
            raise UsageError(f"--fps must be a positive number, got {fps}")
        self.clip = media.open_clip(source, fps)
        # The temporal options, checked now (the warped start does not exist yet).
        later = self.later_settings(Path("warped.png"), Path("mask.png"), Path("target.png"))
        dataclasses.replace(later, init="content").validate()
        self.work = WorkFolder(self.output)
        self._cancel = threading.Event()
        self._job: Job | None = None

    # -- settings of each frame -----------------------------------------------------
    def later_settings(self, warped: Path, mask: Path, target: Path) -> Settings:
        """A frame after its shot's first: started from the warped previous output, the temporal term
        pulling towards ``target`` (the same, as the network sees it).

        One scale: coarse levels would blur the warped start away.
        """
        options = {**self.settings.options,
                   "temporal": {"previous": str(target), "mask": str(mask),
                                **({} if self.temporal_weight is None else {"weight": self.temporal_weight})}}
        return dataclasses.replace(self.settings, losses=[*self.settings.losses, "temporal"], init=str(warped),
                                   iterations=self.frame_iterations, scales=1, options=options)

    def key(self) -> str:
        """What decides the frames: the source, the styles, the settings and the video options."""
        source = [file_digest(p) for p in self.clip.frames] if self.clip.is_folder else file_digest(self.clip.path)
        styles = [s.tobytes().hex()[:64] + str(s.shape) if isinstance(s, np.ndarray) else file_digest(s)
                  for s in self.styles]
        # The same frames with any threads, GPU, tiles or bit depth: the fields a checkpoint must match.
        changes = checkpoints.result_fields(type(self.settings))
        settings = {name: value for name, value in self.settings.to_dict().items() if name in changes}
        return run_key(source, styles, json.dumps(settings, sort_keys=True, default=str), self.frame_iterations,
                       self.independent, self.temporal_weight)

    def cancel(self) -> None:
        """Stop after the current frame's current iteration (thread-safe); its checkpoint is kept."""
        self._cancel.set()
        if self._job is not None:
            self._job.cancel()

    # -- running --------------------------------------------------------------------
    def run(self, on_event: Callable[[job_events.Event], None] | None = None) -> Path:
        """Stylize the frames not yet done and write the video; returns its path.

        ``on_event`` receives this package's events and every frame's Job events.
        """
        emit = on_event or (lambda event: None)
        started = time.monotonic()
        fresh = not self.work.root.exists()
        self.work.claim(self.key(), self.force)
        try:
            last = self._extract()
        except BaseException:
            if fresh:  # nothing of this run is worth keeping: no run.key or half a folder left behind
                self.work.remove()
            raise
        first = self.first
        if first > last:
            raise UsageError(f"--frames starts at {first}, but the video has {last} frames")
        shot_starts = self._flows(first, last)
        done = sum(self.work.done(n) for n in range(first, last + 1))
        emit(events.FramesReady(first, last, tuple(shot_starts), done))
        timing = _Timing(self.settings.iterations, self.frame_iterations)
        for number in range(first, last + 1):
            if self._cancel.is_set():
                raise Cancelled(0, None)
            shot_start = number in shot_starts
            if self.work.done(number):
                emit(events.FrameFinished(number, last, self.work.out(number), 0.0, None, skipped=True))
                continue
            iterations = self.settings.iterations if shot_start else self.frame_iterations
            emit(events.FrameStarted(number, last, shot_start, iterations))
            began = time.monotonic()
            self._stylize(number, shot_start, emit)
            seconds = time.monotonic() - began
            timing.add(shot_start, seconds)
            left = [n in shot_starts for n in range(number + 1, last + 1)]
            emit(events.FrameFinished(number, last, self.work.out(number), seconds, timing.eta(left)))
        media.write_video(self.work.root / "out", first, last - first + 1, self.clip.fps, self.output,
                                  self.clip, audio_start=(first - 1) / self.clip.fps)
        if not self.keep_work:
            self.work.remove()
        emit(events.VideoFinished(self.output, last - first + 1, time.monotonic() - started))
        return self.output

    def _extract(self) -> int:
        """Source frames up to the last wanted one, at the working size, into the work folder; their count."""
        stop = self.last
        count = 0
        size = None
        for count, image in enumerate(media.read_frames(self.clip, stop), start=1):
            path = self.work.source(count)
            if count < self.first - 1 or path.exists():
                continue
            size = size or fit_long_side(image.shape[:2], self.settings.length)
            save_image(resize(image, size), path)
        if count == 0:
            raise ImageError(f"{self.clip.path}: no frames")
        return count

    def _flows(self, first: int, last: int) -> list[int]:
        """Flow and masks of frames first..last (cached); the frames that start a shot."""
        starts = []
        for number in range(first, last + 1):
            if self.independent or number == 1 or (number == first and not self.work.done(number - 1)):
                starts.append(number)
                continue
            mask = self._flow(number)
            if mask.mean() < CUT:
                starts.append(number)
        return starts

    def _flow(self, number: int) -> np.ndarray:
        path, mask_path = self.work.frame("flow", number, ".npz"), self.work.frame("mask", number)
        if path.exists() and mask_path.exists():
            return load_image(mask_path)[..., 0]
        previous, current = load_image(self.work.source(number - 1)), load_image(self.work.source(number))
        forward, backward = flow.flow(previous, current), flow.flow(current, previous)
        save_array(path, forward=forward, backward=backward)
        mask = flow.reliability(forward, backward)
        save_image(np.repeat(mask[..., None], 3, axis=-1), mask_path)
        return mask

    def _stylize(self, number: int, shot_start: bool, emit) -> None:
        out = self.work.out(number)
        if shot_start:
            settings = self.settings
        else:
            backward = load_arrays(self.work.frame("flow", number, ".npz"))["backward"]
            warped = flow.warp(load_image(self.work.out(number - 1)), backward)
            warped_path = target_path = self.work.frame("warped", number)
            save_image(warped, warped_path)
            if self.settings.preserve_colors:  # the temporal term sees what the network optimizes: luminance
                target_path = self.work.frame("target", number)
                save_image(colors.gray(colors.luminance(warped)), target_path)
            settings = self.later_settings(warped_path, self.work.frame("mask", number), target_path)
        self._job = Job(str(self.work.source(number)), self.styles, settings, output=out,
                        checkpoint_every=self.checkpoint_every, resume=True)
        if self._cancel.is_set():
            self._job.cancel()
        try:
            self._job.run(emit)
        except KeyboardInterrupt:
            # Job wrote the image reached; without a checkpoint beside it, it would pass for a finished frame.
            if not checkpoints.path_for(out).exists():
                out.unlink(missing_ok=True)
            raise
        finally:
            self._job = None


class _Timing:
    """Seconds per frame so far, split by kind (a shot's first frame runs more iterations), for the ETA."""

    def __init__(self, iterations: int, frame_iterations: int):
        self.iterations, self.frame_iterations = iterations, frame_iterations
        self.seconds = {True: [], False: []}

    def add(self, shot_start: bool, seconds: float) -> None:
        self.seconds[shot_start].append(seconds)

    def per_frame(self, shot_start: bool) -> float | None:
        own = self.seconds[shot_start]
        if own:
            return sum(own) / len(own)
        other = self.seconds[not shot_start]
        if not other:
            return None
        scale = self.iterations / self.frame_iterations if shot_start else self.frame_iterations / self.iterations
        return sum(other) / len(other) * scale

    def eta(self, shot_starts_left: Sequence[bool]) -> float | None:
        costs = [self.per_frame(start) for start in shot_starts_left]
        return None if any(c is None for c in costs) else float(sum(costs))


def _range(given: tuple[int | None, int | None] | None) -> tuple[int, int | None]:
    first, last = given or (None, None)
    first = 1 if first is None else first
    if first < 1 or (last is not None and last < first):
        raise UsageError(f"--frames {first}:{last if last is not None else ''}: give A:B with 1 <= A <= B")
    return first, last


def _check_output(output: str | os.PathLike, force: bool) -> Path:
    """A video container stylize writes, not yet there (or ``force``), in a folder that takes new files."""
    path = media.check_video_output(output)
    if path.exists() and not force:
        raise ImageError(f"{path}: already exists; pass --force to overwrite it, or choose another name")
    # The folder check of image outputs, on a PNG name beside the video (force: only the folder is tried).
    check_new_output(path.with_suffix(".png"), force=True)
    return path
