"""The Python API: one call does what ``stylize run`` does, with the same defaults.

    from stylize import stylize
    image = stylize("photo.jpg", "painting.jpg", iterations=200, length=384, output="out.png")

For more control, drive a ``Job`` (``stylize.Job``): its plan and estimate
before running, typed events while it runs, ``cancel()`` from another
thread. ``stylize run`` is a thin layer over the same Job, so the command
line and Python cannot drift apart.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from .core.contracts import StepResult
from .core.io.inputs import Source
from .core.request.settings import Settings, settings_from
from .core.run import checkpoint as checkpoints
from .core.run import events
from .core.run.job import Cancelled, Interrupted, Job, metadata

__all__ = ["Cancelled", "Interrupted", "Job", "events", "metadata", "settings_from", "stylize"]


def stylize(content: Source, style: Source | Sequence[Source], *, output: str | os.PathLike | None = None,
            callback: Callable[[StepResult], None] | None = None, settings: Settings | None = None,
            preset: str | None = None, quality: str | None = None, content_mask: Source | None = None,
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
    it), or a ``preset`` and a ``quality`` (draft, normal, best: how long to
    work) that fill in what ``options`` leave out.

    ``callback`` gets a ``StepResult`` after each iteration (``.step``,
    ``.value``, ``.level``, ``.image``); raising StopIteration in it ends the
    run with the image reached.

    With ``output``, the result is also written there (PNG, JPEG or TIFF, at
    ``bit_depth`` 8 or 16 bits per channel, atomically, with the settings in
    its metadata), ``save_every`` writes numbered
    snapshots (``out-0050.png``, into ``save_dir`` if given), a checkpoint is
    written every ``checkpoint_every`` iterations (0: never) to
    ``out.png.checkpoint.npz`` and removed when the run finishes, and
    ``resume=True`` continues from that checkpoint (settings and inputs must
    be the same; a missing checkpoint starts from the beginning). Ctrl-C
    raises ``Interrupted`` after writing the image reached and a checkpoint.
    """
    job = Job(content, style, settings_from(settings, preset, quality, **options), output=output,
              content_mask=content_mask, style_masks=style_masks, save_every=save_every, save_dir=save_dir,
              checkpoint_every=checkpoint_every, resume=resume)

    def on_event(event: events.Event) -> None:
        if callback is not None and isinstance(event, events.Step):
            callback(event.result)

    return job.run(on_event)
