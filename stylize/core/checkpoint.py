"""Checkpoints, so that a long CPU run survives a crash, a kill or Ctrl-C.

A checkpoint holds what ``pipeline.transfer(start=...)`` needs to go on —
the image reached (float32, lossless), the iteration and the level — plus a
fingerprint of everything that defines the result: the settings and digests
of the input images. Resuming from a checkpoint made with other settings or
other images would silently give an image that no single run produces, so
the fingerprints must match, and the message names what differs.

The file is written atomically (``files.atomic_write``): a kill while it is
written leaves the previous checkpoint in place, never a torn one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import ImageError, UsageError
from .files import atomic_write, file_digest

#: A checkpoint lives next to its output: ``out.png`` -> ``out.png.checkpoint.npz``.
SUFFIX = ".checkpoint.npz"
#: Iterations between checkpoints unless told otherwise (0 turns them off).
EVERY = 10
#: Bumped when the file layout changes; other versions are refused.
FORMAT = 2  # 2: the image is the working image (StepResult.state), not the shown one
#: Settings that change how a run is carried out, not the image it makes.
NOT_FINGERPRINTED = frozenset({"threads", "gpu", "tile_size", "bit_depth"})
#: How the fingerprint's keys are named in messages (others: ``--name-with-dashes``).
LABELS = {
    "losses": "--loss",
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

    ``settings`` is a ``pipeline.Settings``; ``inputs`` maps a name from
    ``LABELS`` to a path or array, a list of them, or None.
    """
    prints = {name: _canonical(value) for name, value in dataclasses.asdict(settings).items()
              if name not in NOT_FINGERPRINTED}
    for name, source in inputs.items():
        if source is None:
            prints[name] = "none"
        elif isinstance(source, (list, tuple)):
            prints[name] = ",".join(digest(s) for s in source)
        else:
            prints[name] = digest(source)
    return prints


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

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically; the previous checkpoint stays until the new one is complete."""
        buffer = io.BytesIO()
        np.savez(buffer, format=np.int64(FORMAT), step=np.int64(self.step), level=np.int64(self.level),
                 levels=np.int64(self.levels), image=np.asarray(self.image, np.float32),
                 fingerprint=np.array(json.dumps(self.fingerprint, sort_keys=True)))
        with atomic_write(path) as f:
            f.write(buffer.getvalue())
        return Path(path)

    def check(self, now: Mapping[str, str], path: str | os.PathLike) -> None:
        """Refuse, in one line, to resume with settings or inputs other than the checkpoint's."""
        differ = differences(self.fingerprint, now)
        if differ:
            raise UsageError(f"cannot resume from {path}: it was made with other options or inputs: "
                             f"{'; '.join(differ)}. Run without --resume to start over")


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by ``Checkpoint.save``; anything else is a one-line error."""
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
    except (OSError, ValueError, KeyError) as e:
        raise ImageError(f"{path}: not a readable stylize checkpoint ({e}); delete it to start over") from None


def differences(saved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """``["--ratio: 10000.0 in the checkpoint, 1000.0 now", ...]`` for each key that differs."""
    differ = []
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key, "none"), now.get(key, "none")
        if before == after:
            continue
        label = LABELS.get(key, "--" + key.replace("_", "-"))
        if key.endswith(("_image", "_images")):
            differ.append(f"{label} changed")
        else:
            differ.append(f"{label}: {before} in the checkpoint, {after} now")
    return differ


def remove(path: str | os.PathLike) -> None:
    """Delete a checkpoint that is no longer needed (a missing one is fine)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
