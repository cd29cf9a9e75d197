"""A Job: one run, planned once, driven from outside and watched through events.

    job = Job("photo.jpg", "painting.jpg", output="out.png", iterations=200)
    job.plan                 # the levels, sizes and iterations (no network needed)
    job.estimate             # memory and expected time (loads the network, once)
    job.run(on_event)        # Started, LevelStarted, Step..., Finished | Failed | Cancelled
    job.cancel()             # from any thread: stops after the current iteration

Every driver (the CLI, the web app, the batch runner) goes through this one
class, so they cannot drift apart: loading and checking, snapshots,
checkpoints, resuming, metadata and writing the output happen here once.
What can be refused without work is refused when the Job is made (settings,
output path, images, sizes), before any network is loaded.
"""
from __future__ import annotations

import functools
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import checkpoint as checkpoints
from . import events, speed
from .contracts import StepResult
from .errors import INTERNAL_ERROR_EXIT, NumericalError, StylizeError, UsageError, one_line
from .eta import Clock
from .images import check_output_path, save_image
from .initial import NAMED as NAMED_INITS
from .initial import start_image
from .inputs import Source, load_inputs, one_or_many
from .levels import Start, Views
from .objective import Objective
from .pipeline import Pipeline
from .plan import Level, check_working_sizes, make_plan
from .settings import Settings, settings_from

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


class Job:
    """One run with its inputs loaded, its plan made and its checkpoint, if resuming, read and checked.

    ``settings`` (or keyword ``options``, the fields of ``Settings``, over a
    ``preset`` and a ``quality``: draft, normal, best) define the result. With ``output`` the result is written
    there (PNG, JPEG or TIFF at ``bit_depth``, atomically, with the settings in its metadata),
    ``save_every`` writes numbered snapshots (into ``save_dir`` if given),
    a checkpoint is written every ``checkpoint_every`` iterations (0: never)
    and removed at the end, and ``resume`` continues from it.
    ``level_iterations`` splits the iterations over the coarse-to-fine levels
    (coarse first) instead of the automatic 2:1:1, for experiments with
    schedules (``bench/multiscale.py --schedule``).
    """

    def __init__(self, content: Source, style: Source | Sequence[Source], settings: Settings | None = None, *,
                 output: str | os.PathLike | None = None, content_mask: Source | None = None,
                 style_masks: Sequence[Source] | None = None, save_every: int | None = None,
                 save_dir: str | os.PathLike | None = None, checkpoint_every: int = checkpoints.EVERY,
                 resume: bool = False, preset: str | None = None, level_iterations: Sequence[int] | None = None,
                 quality: str | None = None, **options: Any):
        if settings is None or options or preset or quality:
            settings = settings_from(settings, preset, quality, **options)
        settings.validate()
        _check_files(output, save_every, save_dir, checkpoint_every, resume)
        self.settings = settings
        self.output = None if output is None else check_output_path(output, settings.bit_depth)
        self.save_every, self.checkpoint_every = save_every, checkpoint_every
        self.save_dir = None if save_dir is None else Path(save_dir)
        styles = one_or_many(style)
        masks = None if style_masks is None else list(style_masks)
        self.inputs = load_inputs(content, styles, settings.length, style_scale=settings.style_scale,
                                  content_mask=content_mask, style_masks=masks,
                                  style_weights=settings.style_weights)
        content_shape, style_shapes = self.inputs.content.shape, [s.shape for s in self.inputs.styles]
        self.plan = make_plan(settings, content_shape, style_shapes, level_iterations)
        check_working_sizes(self.plan, content_shape, style_shapes, source_name(content),
                            [source_name(s) for s in styles])
        #: Written into the output's and snapshots' PNG text.
        self.metadata = metadata(settings, content, styles)
        #: Where this run's checkpoint is written (None without an output).
        self.checkpoint_path = None if self.output is None else checkpoints.path_for(self.output)
        #: A checkpoint of another run sits at ``checkpoint_path`` and will be replaced.
        self.replaces_checkpoint = False
        #: What the checkpoint must match: the settings and the inputs' digests.
        self.fingerprint: dict[str, str] = {}
        #: The checkpoint this run continues from, if any.
        self.resumed: checkpoints.Checkpoint | None = None
        if self.checkpoint_path is not None:
            self._read_checkpoint(content, styles, content_mask, masks, resume, level_iterations)
        self._cancel = threading.Event()

    def _read_checkpoint(self, content, styles, content_mask, style_masks, resume: bool,
                         level_iterations: Sequence[int] | None) -> None:
        exists = self.checkpoint_path.exists()
        self.replaces_checkpoint = exists and not resume and self.checkpoint_every > 0
        if not (self.checkpoint_every or resume):
            return  # no checkpoint is written or read: skip re-reading and hashing every input
        init = self.settings.init if self.settings.init not in NAMED_INITS else None  # validate(): a file
        self.fingerprint = checkpoints.fingerprint(self.settings, {
            "content_image": content, "style_images": styles, "content_mask_image": content_mask,
            "style_mask_images": style_masks, "init_image": init})
        if level_iterations is not None:
            self.fingerprint["level_iterations"] = ",".join(str(level.iterations) for level in self.plan.levels)
        if resume and exists:
            self.resumed = checkpoints.load(self.checkpoint_path)
            self.resumed.check(self.fingerprint, self.checkpoint_path)
            self.metadata["stylize:resumed-from"] = str(self.resumed.step)

    # -- what a driver reads before running ------------------------------------------
    @property
    def first_step(self) -> int:
        """Iterations already done before this run (0 unless resuming)."""
        return 0 if self.resumed is None else self.resumed.step

    @functools.cached_property
    def pipeline(self) -> Pipeline:
        """The loaded network and plugins (loaded on first use)."""
        return Pipeline.load(self.settings, self.plan)

    @functools.cached_property
    def views(self) -> Views:
        """The inputs as the network sees them (colours matched, masks split): made once, for the first
        image and the levels."""
        return Views(self.inputs, self.settings)

    @functools.cached_property
    def estimate(self) -> events.Estimate:
        """Memory and time expected; ResourceError if the run cannot fit in memory. Loads the network.
        ``plan`` becomes the complete plan (each level's evaluation, optimizer and costs) it sums."""
        estimate = self.pipeline.estimate()
        self.plan = estimate.plan or self.plan
        return estimate

    def snapshot_path(self, step: int) -> Path:
        """``out-0050.png``, next to the output or in ``save_dir``."""
        assert self.output is not None
        folder = self.save_dir if self.save_dir is not None else self.output.parent
        return folder / f"{self.output.stem}-{step:04d}{self.output.suffix}"

    # -- running ----------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run after its current iteration (thread-safe): a checkpoint is kept, no output written."""
        self._cancel.set()

    def run(self, on_event: EventHandler | None = None, *, preview_every: float | None = None) -> np.ndarray:
        """Optimize; write snapshots, checkpoints and the output; return the image.

        ``on_event`` receives every ``stylize.core.events`` event; raising
        StopIteration from it on a ``Step`` ends the run with the image
        reached (written as the output). ``preview_every`` (seconds) puts the
        current image into a ``Step`` event at most that often. Raises
        ``Cancelled`` after ``cancel()``, ``Interrupted`` on Ctrl-C, and
        StylizeError for bad input; each after its last event.
        """
        emit = on_event or (lambda event: None)
        run = _Run(self, emit, preview_every)
        try:
            return run.execute()
        except _CancelRequested:
            raise run.cancelled() from None
        except NumericalError as e:
            raise run.failed(self._keep_last_good(e)) from None
        except KeyboardInterrupt:
            raise run.interrupted() from None
        except Exception as e:
            if getattr(e, "resumable", False):  # its machines failed, not its input (a lost cluster)
                raise run.failed(run.kept(e)) from None
            run.failed(e)
            raise

    def _keep_last_good(self, e: NumericalError) -> NumericalError:
        # Resuming would only reach the same NaN; the last good image is the useful part.
        self._remove_checkpoint()
        if e.image is None or self.output is None:
            return e
        save_image(e.image, self.output, metadata=self.metadata, bit_depth=self.settings.bit_depth)
        return NumericalError(f"{e}; kept the last good image in {self.output}", image=e.image)

    def _metadata(self, step: int) -> dict[str, str]:
        return {**self.metadata, "stylize:step": str(step)}

    def _checkpoint(self, result: StepResult) -> Path | None:
        return checkpoints.Checkpoint(result.step, result.level, result.levels, result.state,
                                      self.fingerprint).write(self.checkpoint_path)

    def _remove_checkpoint(self) -> None:
        if self.checkpoint_path is not None and (self.checkpoint_every or self.resumed is not None):
            checkpoints.remove(self.checkpoint_path)


class _Run:
    """One call of ``Job.run``: its clock, its latest result and the events it emits."""

    def __init__(self, job: Job, emit: EventHandler, preview_every: float | None):
        self.job, self.emit, self.preview_every = job, emit, preview_every
        self.latest: StepResult | None = None
        self.clock: Clock | None = None
        self.next_preview = 0.0

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
            save_image(image, job.output, metadata=job.metadata, bit_depth=job.settings.bit_depth)
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
            path = save_image(result.image, job.snapshot_path(result.step), metadata=job._metadata(result.step),
                              bit_depth=job.settings.bit_depth)
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
            save_image(image, job.output, metadata=job._metadata(latest.step), bit_depth=job.settings.bit_depth)
        checkpoint = self._checkpoint_latest() if job.output is not None else None
        self.emit(events.Cancelled(latest.step, checkpoint, job.output, "interrupted"))
        return Interrupted(latest.step, job.settings.iterations, image, job.output)

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


def _check_files(output, save_every, save_dir, checkpoint_every, resume) -> None:
    """The file options make sense together (checked before any image is read)."""
    if checkpoint_every is None or checkpoint_every < 0:
        raise UsageError(f"checkpoint_every must be 0 (off) or more, got {checkpoint_every}")
    if save_every is not None and save_every < 1:
        raise UsageError(f"save_every must be at least 1, got {save_every}")
    if output is None and (save_every or resume):
        raise UsageError(f"{'save_every' if save_every else 'resume'} needs an output path: "
                         "snapshots and checkpoints are named after it")
    if save_dir is not None and not save_every:
        raise UsageError("--save-dir needs --save-every N (how often to write a snapshot)")
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise UsageError(f"--save-dir {save_dir}: exists and is not a folder")


def metadata(settings: Settings, content: Source, styles: Sequence[Source]) -> dict[str, str]:
    """The PNG text of every image a run writes: what went in and with which settings (their JSON form)."""
    return {"Software": "stylize", "stylize:content": source_name(content),
            "stylize:style": ", ".join(source_name(s) for s in styles), "stylize:settings": settings.to_json()}


def source_name(source: Source) -> str:
    """How messages and metadata name an input: its path, or ``array 64x48x3``."""
    if isinstance(source, np.ndarray):
        return f"array {'x'.join(map(str, source.shape))}"
    return str(source)
