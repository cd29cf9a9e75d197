"""Checks of ``stylize run``'s options that cost nothing, made before any work.

A mistake should cost no image reading and no network loading, and a run
must never destroy a file the user did not ask it to replace. Each check
raises a one-line StylizeError that says how to fix the command.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from stylize.core import checkpoint as checkpoints
from stylize.core.errors import ImageError, UsageError
from stylize.core.images import check_new_output, check_working_size
from stylize.core.schedule import scale_lengths


def check_output(output: str, *, force: bool, resume: bool, save_every: int | None,
                 save_dir: str | None) -> None:
    """The output (and the numbered snapshots) may be written, and replace nothing unasked.

    ``--resume`` continues the run that wrote the output, so it may replace
    that run's files like ``--force`` — only while that run's checkpoint
    exists: a finished output is not redone and overwritten by a retry.
    """
    replace = force or (resume and checkpoints.path_for(output).exists())
    path = check_new_output(output, force=replace)
    if save_every and not replace:
        folder = Path(save_dir) if save_dir is not None else path.parent
        earlier = _snapshots(folder, path)
        if earlier:
            raise ImageError(f"{folder / earlier[0]}: snapshot of an earlier run ({len(earlier)} in all); "
                             "pass --force to overwrite them, or choose another output name")


def _snapshots(folder: Path, output: Path) -> list[str]:
    """Names of existing ``out-0050.png`` files that this run's --save-every could overwrite."""
    pattern = re.compile(re.escape(output.stem) + r"-\d{4,}" + re.escape(output.suffix) + "$")
    try:
        return sorted(name for name in os.listdir(folder) if pattern.match(name))
    except OSError:  # no folder yet: nothing to overwrite
        return []


def check_conflicts(output: str, inputs: Iterable[str | None], *, prototxt: str | None,
                    weights: str | None, model_dir: str | None) -> None:
    """Options that cannot work together, or cannot work on this build."""
    if model_dir is not None and prototxt is not None and weights is not None:
        raise UsageError("--model-dir is not used when both --prototxt and --weights are given; drop one "
                         "of the three (--model-dir supplies only the file you leave out)")
    for source in inputs:
        if source is not None and _same_file(output, source):
            raise UsageError(f"-o {output} is also an input image ({source}); writing it would destroy "
                             "that input: choose another output name")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (or is unreachable): not the same existing file
        return False


def check_image_sizes(content, styles: Sequence, content_path: str, style_paths: Sequence[str],
                      scales: int | None) -> None:
    """Every image has a short side the network can work on, at every coarse-to-fine level."""
    coarsest = scale_lengths(max(content.shape[:2]), scales)[0] / max(content.shape[:2])
    check_working_size(content.shape, f"content image {content_path}", coarsest)
    for path, style in zip(style_paths, styles):
        check_working_size(style.shape, f"style image {path}", coarsest)
