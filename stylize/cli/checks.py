"""Checks of ``stylize run``'s options that cost nothing, made before any work.

A mistake should cost no image reading and no network loading, and a run
must never destroy a file the user did not ask it to replace. Each check
raises a one-line StylizeError that says how to fix the command.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError, UsageError
from stylize.core.io.images import check_new_output


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


def check_conflicts(output: str, inputs: Iterable[str | None]) -> None:
    """The output is none of the input files."""
    for source in inputs:
        if source is not None and _same_file(output, source):
            raise UsageError(f"-o {output} is also an input image ({source}); writing it would destroy "
                             "that input: choose another output name")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (or is unreachable): not the same existing file
        return False
