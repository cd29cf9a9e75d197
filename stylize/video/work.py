"""The work folder of a video run: every frame's files, named so that a run can stop and continue anywhere.

``OUTPUT.work/`` next to the output holds, per frame number n (from 1):
``source/n.png`` (the frame at the working size), ``flow/n.npz`` (forward
flow n-1 -> n and backward n -> n-1, computed once), ``mask/n.png`` (their
reliability), ``warped/n.png`` (frame n-1's output carried into frame n:
the temporal loss's target and the start of frame n's optimization; with
``--preserve-colors`` the target is its luminance, ``target/n.png``) and
``out/n.png`` (the stylized frame, with its Job checkpoint beside it while
unfinished). ``run.key`` says which inputs and settings made them: a
folder of another run is never mixed into this one.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import UsageError
from stylize.core.io.files import atomic_write


class WorkFolder:
    """Paths and state of ``OUTPUT.work``."""

    def __init__(self, output: Path):
        self.root = output.with_name(output.name + ".work")

    def frame(self, kind: str, number: int, suffix: str = ".png") -> Path:
        return self.root / kind / f"{number:06d}{suffix}"

    def source(self, number: int) -> Path:
        return self.frame("source", number)

    def out(self, number: int) -> Path:
        return self.frame("out", number)

    def done(self, number: int) -> bool:
        """Frame ``number`` is stylized: its output exists and no checkpoint says it is unfinished.

        (An interrupted Job writes the image reached *and* a checkpoint.)
        """
        out = self.out(number)
        return out.exists() and not checkpoints.path_for(out).exists()

    def claim(self, key: str, force: bool) -> None:
        """Use this folder for the run ``key``: continue it, or start over with ``force``.

        A folder made by other inputs or settings is refused unless ``force``
        (its frames would be mixed into this video).
        """
        marker = self.root / "run.key"
        if self.root.exists():
            if not marker.exists() or marker.read_text().strip() != key:
                if not force:
                    raise UsageError(f"{self.root}: work folder of a run with other inputs or settings; "
                                     "pass --force to start over, or choose another output name")
                shutil.rmtree(self.root)
        if not marker.exists():
            with atomic_write(marker) as f:
                f.write(key.encode())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def run_key(*parts: object) -> str:
    """A digest of what decides a run's frames (inputs' digests, settings), for ``WorkFolder.claim``."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def save_array(path: Path, **arrays: np.ndarray) -> None:
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
