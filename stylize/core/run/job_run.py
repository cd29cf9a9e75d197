"""One call of ``Job.run``: its clock, snapshots and checkpoints as it goes, its events, and how it ends.

A ``Job`` is what a run is (made, planned, estimated: ``stylize.core.run.job``);
a ``_Run`` is one attempt at it, from the first image to exactly one of
Finished, Failed or Cancelled.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..contracts import StepResult
from ..errors import INTERNAL_ERROR_EXIT, NumericalError, StylizeError, one_line
from ..evaluation.objective import Objective
from ..planning import speed
from ..planning.plan import Level
from ..request.initial import start_image
from . import events
from .eta import Clock
from .levels import Start

EventHandler = Callable[[events.Event], None]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after at least one iteration.

    ``image`` is the image reached at iteration ``step``; ``path`` is where it
    was written (the output), if anywhere. Being a KeyboardInterrupt, code
    that does not care still sees an ordinary Ctrl-C.
    """

    def __init__(self, step: int, total: int, image: np.ndarray, path: Path | None):
        super().__init__(f"interrupted at iteration {step}/{total}")
        self.step, self.total, self.image, self.path = step, total, image, path


class Cancelled(Exception):
    """``Job.run`` stopped by ``Job.cancel()``: no output written, a checkpoint kept where one is written."""

    def __init__(self, step: int, checkpoint: Path | None):
        super().__init__(f"cancelled at iteration {step}")
        self.step, self.checkpoint = step, checkpoint


class _CancelRequested(Exception):
    """Raised inside the optimizer's callback to unwind the run after ``cancel()``."""


class _Run:
    """One call of ``Job.run``: its clock, its latest result and the events it emits.

    ``job`` is the ``stylize.core.run.job.Job`` being run (not imported here: that
    module imports this one); the run reads its plan, pipeline and file
    options and asks it to write images and checkpoints.
    """

    def __init__(self, job: Any, emit: EventHandler, preview_every: float | None):
        self.job, self.emit, self.preview_every = job, emit, preview_every
        self.latest: StepResult | None = None
        self.clock: Clock | None = None
        self.next_preview = 0.0

    def outcome(self) -> np.ndarray:
        """The run's image; or its end as Cancelled, Interrupted or the error, each after its last event."""
        try:
            return self.execute()
        except _CancelRequested:
            raise self.cancelled() from None
        except NumericalError as e:
            raise self.failed(self.keep_last_good(e)) from None
        except KeyboardInterrupt:
            raise self.interrupted() from None
        except Exception as e:
            if getattr(e, "resumable", False):  # its machines failed, not its input (a lost cluster)
                raise self.failed(self.kept(e)) from None
            self.failed(e)
            raise

    def execute(self) -> np.ndarray:
        job = self.job
        if job._cancel.is_set():
            raise _CancelRequested
        start = self.start()
        estimate = job.estimate
        self.clock = Clock(job.plan, estimate.level_costs(), job.first_step, estimate.seconds)
        self.emit(events.Started(job.plan, estimate, job.first_step))
        image = job.pipeline.run(job.inputs, self.on_step, start, self.on_level, job.views)
        for term in job.pipeline.losses:  # a loss's optional step after the last level (affine.smooth)
            if hasattr(term.loss, "finish"):
                image = term.loss.finish(image)
        if job.output is not None:
            job._write(image)
            job._remove_checkpoint()
        if all(estimate.level_flops) and not any(level.machines for level in job.plan.levels):  # not a cluster's
            self.record_speed(estimate)
        self.emit(events.Finished(job.output, self.clock.elapsed(), image))
        return image

    def start(self) -> Start:
        """Where the optimization begins: the checkpoint's image, or the start's picture (``--init``) at the
        first level that runs, emitted as ``FirstImage`` before the network loads."""
        job = self.job
        if job.resumed is not None:
            return Start(job.resumed.step, job.resumed.image)
        level = job.plan.remaining(0)[0][0]
        views = job.views
        image = views.seen(start_image(job.settings, views.content, views.styles, level.shape))
        self.emit(events.FirstImage(level, views.shown(image)))
        return Start(0, image)

    def record_speed(self, estimate: events.Estimate) -> None:
        """The rate this run achieved in each arithmetic its levels ran in, for the next estimate."""
        clock, arithmetic = self.clock, estimate.level_arithmetic or ("",) * len(estimate.level_flops)
        for kind in set(arithmetic):  # each level's start charged as the ETA charges it
            levels = [i for i, a in enumerate(arithmetic) if a == kind]
            speed.record(self.job.settings.backend, self.job.settings.threads,
                         sum(clock.level_charged[i] * estimate.level_flops[i] for i in levels),
                         sum(clock.level_elapsed[i] for i in levels),
                         sum(clock.level_iterations[i] for i in levels), kind)

    def on_level(self, level: Level) -> None:
        if self.job._cancel.is_set():
            raise _CancelRequested
        self.emit(events.LevelStarted(level, len(self.job.plan.levels)))

    def on_step(self, result: StepResult, objective: Objective) -> None:
        job = self.job
        self.latest = result
        if job._cancel.is_set():
            raise _CancelRequested
        written = []
        if job.output is not None and job.save_every and result.step % job.save_every == 0:
            path = job._write(result.image, job.snapshot_path(result.step), result.step)
            written.append(events.SnapshotWritten(result.step, path))
        if job.checkpoint_path is not None and job.checkpoint_every and result.step % job.checkpoint_every == 0:
            path = job._checkpoint(result)  # None: not written (a warning said why); the run goes on
            if path is not None:
                written.append(events.CheckpointWritten(result.step, path))
        preview = None
        if self.preview_every is not None and time.monotonic() >= self.next_preview:
            preview = result.image
            self.next_preview = time.monotonic() + self.preview_every
        self.emit(events.Step(result.step, job.plan.iterations, result.level, result.levels, result.value,
                              objective.weighted_terms(), self.clock.elapsed(), self.clock.step(result.step),
                              result.converged, preview, result))
        for event in written:
            self.emit(event)

    def _checkpoint_latest(self) -> Path | None:
        job = self.job
        if self.latest is None or job.checkpoint_path is None or not job.checkpoint_every:
            return job.checkpoint_path if job.resumed is not None else None
        path = job._checkpoint(self.latest)
        if path is None:  # not written (a warning said why): an earlier one may still be there
            return job.checkpoint_path if job.checkpoint_path.exists() else None
        self.emit(events.CheckpointWritten(self.latest.step, path))
        return path

    def cancelled(self) -> Cancelled:
        step = self.job.first_step if self.latest is None else self.latest.step
        checkpoint = self._checkpoint_latest()
        self.emit(events.Cancelled(step, checkpoint, None, "cancelled"))
        return Cancelled(step, checkpoint)

    def interrupted(self) -> KeyboardInterrupt:
        job, latest = self.job, self.latest
        if latest is None:
            self.emit(events.Cancelled(job.first_step, None, None, "interrupted"))
            return KeyboardInterrupt()
        image = latest.image
        if job.output is not None:
            job._write(image, step=latest.step)
        checkpoint = self._checkpoint_latest() if job.output is not None else None
        self.emit(events.Cancelled(latest.step, checkpoint, job.output, "interrupted"))
        return Interrupted(latest.step, job.settings.iterations, image, job.output)

    def keep_last_good(self, e: NumericalError) -> NumericalError:
        """``e`` after the last good image is written as the output (resuming would only reach the same NaN)."""
        job = self.job
        job._remove_checkpoint()
        if e.image is None or job.output is None:
            return e
        job._write(e.image)
        return NumericalError(f"{e}; kept the last good image in {job.output}", image=e.image)

    def kept(self, error: Exception) -> Exception:
        """``error`` saying where the iteration reached is kept (a checkpoint written now) for --resume."""
        checkpoint = self._checkpoint_latest()
        if checkpoint is None:
            return error
        step = self.job.first_step if self.latest is None else self.latest.step
        kept = type(error)(f"{error}; iteration {step} is kept in {checkpoint}")
        kept.__dict__.update(error.__dict__)
        return kept

    def failed(self, error: Exception) -> Exception:
        """Emit Failed for ``error``: a StylizeError's own message and code, anything else is a bug (70)."""
        if isinstance(error, StylizeError):
            self.emit(events.Failed(one_line(error), error.exit_code, error))
        else:
            self.emit(events.Failed(f"internal error, please report it: {type(error).__name__}: "
                                    f"{one_line(error)}", INTERNAL_ERROR_EXIT, error))
        return error
