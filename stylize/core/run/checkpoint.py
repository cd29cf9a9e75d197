"""Checkpoints, so that a long CPU run survives a crash, a kill or Ctrl-C.

A checkpoint holds what ``pipeline.transfer(start=...)`` needs to go on —
the image reached (float32, lossless), the iteration and the level — plus a
fingerprint of everything that defines the result: the settings and digests
of the input images. Resuming from a checkpoint made with other settings or
other images would silently give an image that no single run produces, so
the fingerprints must match, and the message names what differs.

The file is written atomically and the generation before it is kept beside
it (``out.png.checkpoint.npz.prev``, a hard link made before the new one is
renamed into place), so a kill at any moment leaves a complete checkpoint at
``path_for(output)``; a checkpoint damaged afterwards (a truncated copy, a
failing disk) is replaced by the previous generation on loading, said in one
line. A checkpoint that cannot be written (disk full, read-only folder) is a
one-line warning and the run goes on: it is insurance, not the result.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ImageError, UsageError
from ..io.files import file_digest, move_into_place
from ..request.fields import described, long_flag
from ..request.settings import Settings

log = logging.getLogger(__name__)

#: A checkpoint lives next to its output: ``out.png`` -> ``out.png.checkpoint.npz``.
SUFFIX = ".checkpoint.npz"
#: The generation before the latest, kept until the next one is complete: ``<checkpoint>.prev``.
PREVIOUS = ".prev"
#: Iterations between checkpoints unless told otherwise (0 turns them off).
EVERY = 10
#: Bumped when the file layout changes; other versions are refused.
FORMAT = 2  # 2: the image is the working image (StepResult.state), not the shown one
#: How the fingerprint's keys that are no command-line flag are named in messages (settings: their flag).
LABELS = {
    "options": "plugin options (--set, and backend options such as --pooling)",
    "content_image": "the content image",
    "style_images": "the style images",
    "content_mask_image": "the --content-mask image",
    "style_mask_images": "the --style-mask images",
    "init_image": "the --init image",
}


def path_for(output: str | os.PathLike) -> Path:
    """Where the checkpoint of a run writing ``output`` lives."""
    output = Path(output)
    return output.with_name(output.name + SUFFIX)


def previous_for(path: str | os.PathLike) -> Path:
    """Where the generation before the checkpoint at ``path`` is kept."""
    path = Path(path)
    return path.with_name(path.name + PREVIOUS)


def digest(source: Any) -> str:
    """sha256 of an image file, or of an array's bytes (the API accepts both)."""
    if isinstance(source, np.ndarray):
        array = np.ascontiguousarray(source)
        h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
        return h.hexdigest()
    return file_digest(source)


def fingerprint(settings: Any, inputs: Mapping[str, Any]) -> dict[str, str]:
    """Canonical text of each setting that defines the result, and of each input's digest.

    ``settings`` is a ``Settings`` (its JSON form: a checkpoint of the form before it, ``asdict``'s,
    reads the same); ``inputs`` maps a name from
    ``LABELS`` to a path or array, a list of them, or None.
    """
    changes = result_fields(type(settings))  # each field says whether it changes the image made
    prints = {name: _canonical(value) for name, value in settings.to_dict().items() if name in changes}
    for name, source in inputs.items():
        if source is None:
            prints[name] = "none"
        elif isinstance(source, (list, tuple)):
            prints[name] = ",".join(digest(s) for s in source)
        else:
            prints[name] = digest(source)
    return prints


def result_fields(cls: type) -> set[str]:
    """The fields of a Settings class that change the result (a resume must match), by their declarations."""
    return {name for name, (about, _) in described(cls).items() if about.result}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Checkpoint:
    """A run's state after ``step`` iterations (counted over all levels)."""

    step: int
    level: int
    levels: int
    #: HxWx3 float32 RGB in [0, 1], at the size of ``level``.
    image: np.ndarray
    fingerprint: dict[str, str]
    #: Said when this is the previous generation, read because the latest was damaged (one line).
    note: str | None = None

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically, keeping the previous generation as ``previous_for(path)``; OSError if it cannot.

        Order: the new file complete and synced beside ``path``; the current
        one hard-linked as the previous generation; the new one renamed onto
        ``path``. A kill between any two steps leaves ``path`` complete.
        """
        path = Path(path)
        buffer = io.BytesIO()
        np.savez(buffer, format=np.int64(FORMAT), step=np.int64(self.step), level=np.int64(self.level),
                 levels=np.int64(self.levels), image=np.asarray(self.image, np.float32),
                 fingerprint=np.array(json.dumps(self.fingerprint, sort_keys=True)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getbuffer())
            if path.exists():
                _keep_previous(path)
            move_into_place(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _remove_leftovers(path)
        return path

    def write(self, path: str | os.PathLike) -> Path | None:
        """``save``, or a one-line warning and None when the disk refuses it (full, read-only): the run goes on."""
        try:
            return self.save(path)
        except OSError as e:
            log.warning("stylize: warning: could not write the checkpoint at iteration %d to %s (%s); "
                        "the run goes on%s", self.step, Path(path).name, e.strerror or e,
                        "; the previous one is kept" if Path(path).exists() else "")
            return None

    def check(self, now: Mapping[str, str], path: str | os.PathLike) -> None:
        """Refuse, in one line, to resume with settings or inputs other than the checkpoint's."""
        differ = differences(self.fingerprint, now)
        if differ:
            raise UsageError(f"cannot resume from {path}: it was made with other options or inputs: "
                             f"{'; '.join(differ)}. Run without --resume to start over")


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by ``Checkpoint.save``, or its previous generation if it is damaged.

    Using the previous generation is said in one warning line (and in
    ``Checkpoint.note``); with neither readable it is a one-line ImageError
    naming the file.
    """
    try:
        return _load(path)
    except ImageError as damaged:
        previous = previous_for(path)
        if "no such checkpoint" in str(damaged) or not previous.exists():
            raise
        try:
            older = _load(previous)
        except ImageError:
            raise damaged from None
        older.note = (f"{Path(path).name} is damaged; resuming from the previous checkpoint, at iteration "
                      f"{older.step}")
        log.warning("stylize: warning: %s", older.note)
        return older


def step_of(path: str | os.PathLike) -> int | None:
    """The iteration a run would resume from with the checkpoint at ``path``; None if there is none usable."""
    try:
        return load(path).step
    except ImageError:
        return None


def _load(path: str | os.PathLike) -> Checkpoint:
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != FORMAT:
                raise ImageError(f"{path}: a checkpoint of another stylize version "
                                 f"(format {int(data['format'])}); delete it to start over")
            return Checkpoint(step=int(data["step"]), level=int(data["level"]), levels=int(data["levels"]),
                              image=np.asarray(data["image"], np.float32),
                              fingerprint=json.loads(str(data["fingerprint"])))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such checkpoint") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        reason = " ".join(str(e).split())[:120] or type(e).__name__
        raise ImageError(f"{path}: not a readable stylize checkpoint (damaged or truncated: {reason}); "
                         "delete it to start over") from None


def differences(saved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """``["--ratio: 10000.0 in the checkpoint, 1000.0 now", ...]`` for each key that differs."""
    differ = []
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key, "none"), now.get(key, "none")
        if before == after:
            continue
        label = LABELS.get(key) or _flag(key)
        if key.endswith(("_image", "_images")):
            differ.append(f"{label} changed")
        else:
            differ.append(f"{label}: {before} in the checkpoint, {after} now")
    return differ


def _flag(key: str) -> str:
    about = described(Settings).get(key)
    return long_flag(key, about[0]) if about else "--" + key.replace("_", "-")


def remove(path: str | os.PathLike) -> None:
    """Delete a checkpoint that is no longer needed, its previous generation and leftovers (missing is fine)."""
    for name in (path, previous_for(path)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
    _remove_leftovers(Path(path))


def _keep_previous(path: Path) -> None:
    """Make ``previous_for(path)`` the file now at ``path`` (a hard link, or a copy where links fail)."""
    previous = previous_for(path)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{previous.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.unlink(staged)
        try:
            os.link(path, staged)
        except OSError:
            shutil.copyfile(path, staged)
        os.replace(staged, previous)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        raise


def _remove_leftovers(path: Path) -> None:
    """Temporary files of this checkpoint's writes that a kill left behind (hidden, never read)."""
    for pattern in (f".{path.name}.*.tmp", f".{previous_for(path).name}.*.tmp"):
        for leftover in path.parent.glob(pattern):
            with contextlib.suppress(OSError):
                leftover.unlink()
