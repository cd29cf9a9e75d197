"""The work folder's bound: its usage counted, and the oldest unreferenced uploads and results pruned to stay under it.

Without a bound, anyone who can reach the server fills its disk (50 MiB an
upload, no end to uploads). ``Storage`` counts every file under the work
folder; before an upload is accepted and after a job ends it deletes, oldest
first, whole uploads (image, label, thumbnail) and whole finished jobs
(result, checkpoint, record) that no queued or running job needs, until
what is kept fits the limit. What a queued or running job needs is never
deleted: when that alone is over the limit, an upload is refused (507).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import UsageError

from .work import JOB_ID, UPLOAD_ID, WorkFolder

#: Share of the disk's free space (plus what the folder already holds) a server takes by default.
DEFAULT_SHARE = 0.5
_UNITS = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, folder: Path) -> int:
    """``--max-storage``: ``500M``, ``2G``, ``1.5GiB``, a bare number of MiB, or ``30%`` of the free space."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(%|[kmgt]?)(?:i?b)?\s*", text.lower())
    if not match or (match.group(2) == "%" and not 0 < float(match.group(1)) <= 100):
        raise UsageError(f"--max-storage {text!r}: give a size such as 500M, 2G or 1.5GiB, or a share of the "
                         "free disk space such as 30%")
    number, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        return default_limit(folder, number / 100)
    size = int(number * _UNITS[unit])
    if size < 1 << 20:
        raise UsageError(f"--max-storage {text!r}: at least 1M (one result needs more)")
    return size


def default_limit(folder: Path, share: float = DEFAULT_SHARE) -> int:
    """``share`` of what the folder's disk could give it: its free space plus what the folder holds now."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    held = folder_bytes(folder) if folder.exists() else 0
    return int((shutil.disk_usage(probe).free + held) * share)


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


@dataclass(frozen=True)
class Item:
    """Something prunable: an upload or a finished job, with its files, their bytes and its age."""

    kind: str  # "upload" or "job"
    id: str
    files: tuple[Path, ...]
    bytes: int
    mtime: float


class Storage:
    """The limit and usage of one work folder, and the pruning that keeps it under the limit."""

    def __init__(self, work: WorkFolder, limit: int):
        self.work, self.limit = work, limit

    def usage(self) -> int:
        return folder_bytes(self.work.root)

    def report(self) -> dict:
        used = self.usage()
        return {"limit": self.limit, "used": used, "free": max(0, self.limit - used)}

    def upload_files(self, upload_id: str) -> tuple[Path, ...]:
        path = self.work.uploads / upload_id
        return (path, Path(f"{path}.json"), Path(f"{path}.jpg"))

    def job_files(self, job_id: str) -> tuple[Path, ...]:
        result = self.work.result(job_id)
        check = checkpoints.path_for(result)
        return (result, check, checkpoints.previous_for(check), self.work.record(job_id))

    def items(self, jobs_over: Iterable[str]) -> list[Item]:
        """Every upload, and every job in ``jobs_over`` (ended: finished, failed, cancelled, interrupted)."""
        found = []
        for path in self.work.uploads.iterdir():
            if UPLOAD_ID.fullmatch(path.name):
                found.append(self._item("upload", path.name, self.upload_files(path.name)))
        for job_id in jobs_over:
            if JOB_ID.fullmatch(job_id):
                found.append(self._item("job", job_id, self.job_files(job_id)))
        return sorted(found, key=lambda item: item.mtime)

    @staticmethod
    def _item(kind: str, item_id: str, files: tuple[Path, ...]) -> Item:
        size, mtime = 0, 0.0
        for path in files:
            with contextlib.suppress(OSError):
                info = os.lstat(path)
                size, mtime = size + info.st_size, max(mtime, info.st_mtime)
        return Item(kind, item_id, files, size, mtime)

    def prune(self, need: int, jobs_over: Iterable[str], needed_uploads: set[str],
              forget_job: Callable[[str], None]) -> list[Item]:
        """Delete the oldest items not needed until ``need`` more bytes fit; what was deleted, oldest first.

        ``needed_uploads``: uploads a queued or running job reads; ``forget_job``
        is called for each job deleted (the queue drops its record).
        """
        used = self.usage()
        deleted = []
        for item in self.items(jobs_over):
            if used + need <= self.limit:
                break
            if item.kind == "upload" and item.id in needed_uploads:
                continue
            remove_files(item.files)
            if item.kind == "job":
                forget_job(item.id)
            used -= item.bytes
            deleted.append(item)
        return deleted


def remove_files(files: Iterable[Path]) -> None:
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
