"""Files that readers never see half-written, and digests to recognise them by.

Everything that lands in a place another process may read (output images,
model weights, their sidecars) is first written beside it and then renamed
onto it: on one file system a rename is atomic, so a reader finds the old
file or the complete new one, and a crash leaves at worst a hidden leftover.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

#: Bytes hashed at a time: model weights run to hundreds of megabytes.
DIGEST_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Yield a binary file in ``path``'s folder, renamed onto ``path`` on success.

    Parent folders are created. On any exception the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staging_folder(folder: str | os.PathLike, prefix: str) -> Iterator[Path]:
    """A hidden temporary folder inside ``folder`` (created if need be), removed on exit.

    Files prepared here share ``folder``'s file system, so ``move_into_place``
    can rename them onto their final path atomically; whatever goes wrong,
    nothing partial is left behind.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def move_into_place(complete: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename the finished file ``complete`` onto ``path`` (same file system), durably.

    The data is synced first, so that after a crash ``path`` is never a
    renamed but empty file.
    """
    with open(complete, "rb+") as f:
        os.fsync(f.fileno())
    _publish(complete, path)
    return Path(path)


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path``, read in chunks so size costs no memory.

    ``algorithm`` is any name ``hashlib.new`` accepts ("sha256", "sha1", ...),
    to compare against the digest a publisher or a pin gives.
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(DIGEST_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is too private for images and weights
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
