"""The Python API: one call does what ``stylize run`` does, with the same defaults.

    from stylize import stylize
    image = stylize("photo.jpg", "painting.jpg", iterations=200, length=384, output="out.png")

``stylize run`` is a thin layer over this module (``prepare`` then
``Job.run``): loading, snapshots, checkpoints, resuming, metadata and
writing the output happen here once, so the command line and Python cannot
drift apart. The CLI only adds option parsing, the progress bar and messages.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .core import checkpoint as checkpoints
from .core import pipeline
from .core.contracts import StepResult
from .core.errors import NumericalError, UsageError
from .core.images import check_output_path, save_image
from .core.initial import NAMED as NAMED_INITS
from .core.inputs import Inputs, Source, load_inputs, one_or_many
from .core.pipeline import Settings, Start

__all__ = ["Interrupted", "Job", "metadata", "prepare", "settings_from", "stylize"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, after at least one iteration.

    ``image`` is the image reached at iteration ``step``; ``path`` is where it
    was written (the output), if anywhere. Being a KeyboardInterrupt, code
    that does not care still sees an ordinary Ctrl-C.
    """

    def __init__(self, step: int, total: int, image: np.ndarray, path: Path | None):
        super().__init__(f"interrupted at iteration {step}/{total}")
        self.step, self.total, self.image, self.path = step, total, image, path


def stylize(content: Source, style: Source | Sequence[Source], *, output: str | os.PathLike | None = None,
            callback: Callable[[StepResult], None] | None = None, settings: Settings | None = None,
            preset: str | None = None, content_mask: Source | None = None,
            style_masks: Sequence[Source] | None = None, save_every: int | None = None,
            save_dir: str | os.PathLike | None = None, checkpoint_every: int = checkpoints.EVERY,
            resume: bool = False, **options: Any) -> np.ndarray:
    """Stylize ``content`` with ``style`` and return the result as an HxWx3 float32 RGB array in [0, 1].

    ``content``, ``style`` (one or a list, blended by ``style_weights``) and
    the masks are file paths or arrays (HxW or HxWx3/4; uint8, uint16 or
    float in [0, 1]). ``options`` are the fields of ``Settings`` —
    ``iterations=``, ``length=``, ``ratio=``, ``losses=``, ``init=``,
    ``seed=``, ``options={"tv": {"weight": 1e5}}`` ... — with the defaults of
    ``stylize run``; or pass a whole ``settings`` (``options`` then override
    it), or a ``preset`` that fills in what ``options`` leave out.

    ``callback`` gets a ``StepResult`` after each iteration (``.step``,
    ``.value``, ``.level``, ``.image``); raising StopIteration in it ends the
    run with the image reached.

    With ``output``, the result is also written there (PNG or JPEG, atomically,
    with the settings in PNG text metadata), ``save_every`` writes numbered
    snapshots (``out-0050.png``, into ``save_dir`` if given), a checkpoint is
    written every ``checkpoint_every`` iterations (0: never) to
    ``out.png.checkpoint.npz`` and removed when the run finishes, and
    ``resume=True`` continues from that checkpoint (settings and inputs must
    be the same; a missing checkpoint starts from the beginning). Ctrl-C
    raises ``Interrupted`` after writing the image reached and a checkpoint.
    """
    job = prepare(content, style, settings=settings_from(settings, preset, **options), output=output,
                  content_mask=content_mask, style_masks=style_masks, save_every=save_every,
                  save_dir=save_dir, checkpoint_every=checkpoint_every, resume=resume)
    return job.run(callback)


#: Settings fields that take a list of names; a single string is one name (losses) or comma-separated.
_LISTS = {"losses": lambda text: [text], "content_layers": lambda text: text.replace(",", " ").split(),
          "style_layers": lambda text: text.replace(",", " ").split()}


def settings_from(settings: Settings | None = None, preset: str | None = None, **options: Any) -> Settings:
    """``Settings`` from keyword options over a preset or over given settings (not both)."""
    fields = {f.name for f in dataclasses.fields(Settings)}
    for name in options:
        if name not in fields:
            close = difflib.get_close_matches(name, sorted(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; settings are {', '.join(sorted(fields))}"
            raise TypeError(f"stylize() got an unknown setting {name!r}{hint}")
    for name, split in _LISTS.items():
        if isinstance(options.get(name), str):
            options[name] = split(options[name])
    if settings is not None:
        if preset is not None:
            raise UsageError("give either settings or a preset, not both")
        return dataclasses.replace(settings, **options)
    return Settings.from_preset(preset, **options) if preset else Settings(**options)


@dataclass
class Job:
    """A run with its inputs loaded and its checkpoint, if resuming, read and checked."""

    settings: Settings
    inputs: Inputs
    #: Written into the output's and snapshots' PNG text.
    metadata: dict[str, str]
    output: Path | None = None
    save_every: int | None = None
    save_dir: Path | None = None
    checkpoint_every: int = 0
    #: Where this run's checkpoint is written (None without an output).
    checkpoint_path: Path | None = None
    #: What the checkpoint must match: the settings and the inputs' digests.
    fingerprint: dict[str, str] = field(default_factory=dict)
    #: The checkpoint this run continues from, if any.
    resumed: checkpoints.Checkpoint | None = None
    #: A checkpoint of another run sits at ``checkpoint_path`` and will be replaced.
    replaces_checkpoint: bool = False

    @property
    def start(self) -> Start | None:
        return None if self.resumed is None else Start(self.resumed.step, self.resumed.image)

    @property
    def first_step(self) -> int:
        """Iterations already done before this run (0 unless resuming)."""
        return 0 if self.resumed is None else self.resumed.step

    def snapshot_path(self, step: int) -> Path:
        """``out-0050.png``, next to the output or in ``save_dir``."""
        assert self.output is not None
        folder = self.save_dir if self.save_dir is not None else self.output.parent
        return folder / f"{self.output.stem}-{step:04d}{self.output.suffix}"

    def run(self, callback: Callable[[StepResult], None] | None = None) -> np.ndarray:
        """Optimize; write snapshots, checkpoints and the output; return the image."""
        latest: StepResult | None = None

        def on_step(result: StepResult) -> None:
            nonlocal latest
            latest = result
            if self.output is not None and self.save_every and result.step % self.save_every == 0:
                save_image(result.image, self.snapshot_path(result.step), metadata=self._metadata(result.step))
            if self.checkpoint_path is not None and self.checkpoint_every and \
                    result.step % self.checkpoint_every == 0:
                self._checkpoint(result)
            if callback is not None:
                callback(result)

        inputs = self.inputs
        try:
            image = pipeline.transfer(inputs.content, inputs.styles, self.settings, callback=on_step,
                                      content_mask=inputs.content_mask, style_masks=inputs.style_masks,
                                      start=self.start)
        except NumericalError as e:
            # Resuming would only reach the same NaN; the last good image is the useful part.
            self._remove_checkpoint()
            if e.image is None or self.output is None:
                raise
            save_image(e.image, self.output, metadata=self.metadata)
            raise NumericalError(f"{e}; kept the last good image in {self.output}", image=e.image) from None
        except KeyboardInterrupt:
            if latest is None:
                raise
            image = latest.image
            if self.output is not None:
                save_image(image, self.output, metadata=self._metadata(latest.step))
                if self.checkpoint_every:
                    self._checkpoint(latest)
            raise Interrupted(latest.step, self.settings.iterations, image, self.output) from None
        if self.output is not None:
            save_image(image, self.output, metadata=self.metadata)
            self._remove_checkpoint()
        return image

    def _metadata(self, step: int) -> dict[str, str]:
        return {**self.metadata, "stylize:step": str(step)}

    def _checkpoint(self, result: StepResult) -> None:
        checkpoints.Checkpoint(result.step, result.level, result.levels, result.state,
                               self.fingerprint).save(self.checkpoint_path)

    def _remove_checkpoint(self) -> None:
        if self.checkpoint_path is not None and (self.checkpoint_every or self.resumed is not None):
            checkpoints.remove(self.checkpoint_path)


def prepare(content: Source, style: Source | Sequence[Source], *, settings: Settings,
            output: str | os.PathLike | None = None, content_mask: Source | None = None,
            style_masks: Sequence[Source] | None = None, save_every: int | None = None,
            save_dir: str | os.PathLike | None = None, checkpoint_every: int = checkpoints.EVERY,
            resume: bool = False) -> Job:
    """Check everything that can be checked before the long part, load the inputs, read a checkpoint.

    Cheap checks come first (settings, plugin names, the output path), so a
    typo costs no image reading and no network loading.
    """
    settings.validate()
    if checkpoint_every is None or checkpoint_every < 0:
        raise UsageError(f"checkpoint_every must be 0 (off) or more, got {checkpoint_every}")
    if save_every is not None and save_every < 1:
        raise UsageError(f"save_every must be at least 1, got {save_every}")
    if output is not None:
        output = check_output_path(output)
    elif save_every or resume:
        raise UsageError(f"{'save_every' if save_every else 'resume'} needs an output path: "
                         "snapshots and checkpoints are named after it")
    if save_dir is not None and not save_every:
        raise UsageError("--save-dir needs --save-every N (how often to write a snapshot)")
    if save_dir is not None and Path(save_dir).exists() and not Path(save_dir).is_dir():
        raise UsageError(f"--save-dir {save_dir}: exists and is not a folder")
    style_list = one_or_many(style)
    mask_list = None if style_masks is None else list(style_masks)
    inputs = load_inputs(content, style_list, settings.length, style_scale=settings.style_scale,
                         content_mask=content_mask, style_masks=mask_list)
    inputs.check(settings.style_weights)
    job = Job(settings, inputs, metadata(settings, content, style_list), output=output, save_every=save_every,
              save_dir=None if save_dir is None else Path(save_dir), checkpoint_every=checkpoint_every)
    if output is None:
        return job
    job.checkpoint_path = checkpoints.path_for(output)
    exists = job.checkpoint_path.exists()
    job.replaces_checkpoint = exists and not resume and checkpoint_every > 0
    if not (checkpoint_every or resume):
        return job  # no checkpoint is written or read: skip re-reading and hashing every input
    init = settings.init if settings.init not in NAMED_INITS else None  # validate() checked it is a file
    job.fingerprint = checkpoints.fingerprint(settings, {
        "content_image": content, "style_images": style_list, "content_mask_image": content_mask,
        "style_mask_images": mask_list, "init_image": init})
    if resume and exists:
        job.resumed = checkpoints.load(job.checkpoint_path)
        job.resumed.check(job.fingerprint, job.checkpoint_path)
        job.metadata["stylize:resumed-from"] = str(job.resumed.step)
    return job


def metadata(settings: Settings, content: Source, styles: Sequence[Source]) -> dict[str, str]:
    """The PNG text of every image a run writes: what went in and with which settings."""
    return {"Software": "stylize", "stylize:content": _name(content),
            "stylize:style": ", ".join(_name(s) for s in styles), "stylize:settings": repr(settings)}


def _name(source: Source) -> str:
    if isinstance(source, np.ndarray):
        return f"array {'x'.join(map(str, source.shape))}"
    return str(source)
