"""A Job: one run, planned once, driven from outside and watched through events.

    job = Job("photo.jpg", "painting.jpg", output="out.png", iterations=200)
    job.plan                 # the levels, sizes and iterations (no network needed)
    job.estimate             # memory and expected time (loads the network, once)
    job.run(on_event)        # Started, LevelStarted, Step..., Finished | Failed | Cancelled
    job.cancel()             # from any thread: stops after the current iteration

Every driver (the CLI, the web app, the batch runner) goes through this one
class, so they cannot drift apart: loading and checking, snapshots,
checkpoints, resuming, metadata and writing the output happen here once
(one call of ``run``, its events and how it ends: ``stylize.core.run.job_run``).
What can be refused without work is refused when the Job is made (settings,
output path, images, sizes), before any network is loaded.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..contracts import StepResult
from ..errors import UsageError
from ..io.images import check_output_path, save_image
from ..io.inputs import Source, load_inputs, one_or_many
from ..planning.plan import check_working_sizes, make_plan
from ..request.initial import NAMED as NAMED_INITS
from ..request.settings import Settings, settings_from
from . import checkpoint as checkpoints
from . import events
from .job_run import Cancelled, EventHandler, Interrupted, _Run
from .levels import Views
from .pipeline import Pipeline

__all__ = ["Cancelled", "EventHandler", "Interrupted", "Job", "metadata", "source_name"]


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

        ``on_event`` receives every ``stylize.core.run.events`` event; raising
        StopIteration from it on a ``Step`` ends the run with the image
        reached (written as the output). ``preview_every`` (seconds) puts the
        current image into a ``Step`` event at most that often. Raises
        ``Cancelled`` after ``cancel()``, ``Interrupted`` on Ctrl-C, and
        StylizeError for bad input; each after its last event.
        """
        return _Run(self, on_event or (lambda event: None), preview_every).outcome()

    # -- what a run asks of its job (``stylize.core.run.job_run``) ------------------------------
    def _write(self, image: np.ndarray, path: Path | None = None, step: int | None = None) -> Path:
        """Write ``image`` to the output, or to ``path`` (a snapshot), with the run's metadata (at ``step``)."""
        metadata = self.metadata if step is None else {**self.metadata, "stylize:step": str(step)}
        return save_image(image, path or self.output, metadata=metadata, bit_depth=self.settings.bit_depth)

    def _checkpoint(self, result: StepResult) -> Path | None:
        return checkpoints.Checkpoint(result.step, result.level, result.levels, result.state,
                                      self.fingerprint).write(self.checkpoint_path)

    def _remove_checkpoint(self) -> None:
        if self.checkpoint_path is not None and (self.checkpoint_every or self.resumed is not None):
            checkpoints.remove(self.checkpoint_path)


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
