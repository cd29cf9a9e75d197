"""The server's work folder: every file it writes, under names it chooses.

    work/uploads/<32 hex>.<ext>        an accepted upload, as sent (checked by load_image)
    work/uploads/<32 hex>.<ext>.json   its label (the sender's file name, never used as a path), size
    work/uploads/<32 hex>.<ext>.jpg    its thumbnail, re-encoded by the server
    work/incoming/                     uploads being received and checked (removed if refused)
    work/jobs/<16 hex>.json            a job's request and state, to resume it after a restart
    work/results/<16 hex>.png          a job's result (its settings in PNG text), and its checkpoint

A client names files only by these identifiers, matched against fixed
patterns before any path is built, and only regular files are served or
listed (``regular``: a symbolic link planted in the folder is not followed),
so no request can reach a file outside the folder or one the server did not
write.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

UPLOAD_ID = re.compile(r"[0-9a-f]{32}\.(?:png|jpg|gif|bmp|tif|webp|ppm|img)")
JOB_ID = re.compile(r"[0-9a-f]{16}")


class Refused(Exception):
    """A request the server turns down: an HTTP status and a one-line message for the page."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class WorkFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        for folder in (self.uploads, self.incoming, self.jobs, self.results):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def results(self) -> Path:
        return self.root / "results"

    def upload(self, upload_id: object) -> Path:
        """The file of upload ``upload_id``; Refused (400/404) for anything else."""
        if not isinstance(upload_id, str) or not UPLOAD_ID.fullmatch(upload_id):
            raise Refused(400, f"{str(upload_id)[:80]!r} is not an upload id; upload the image first")
        path = self.uploads / upload_id
        if not regular(path):
            raise Refused(404, f"no upload {upload_id}; upload the image again")
        return path

    def upload_id_of(self, path: str | Path) -> str | None:
        """The upload id of a path in the uploads folder (as PNG metadata records it), if it still exists."""
        path = Path(path)
        if path.parent != self.uploads or not UPLOAD_ID.fullmatch(path.name) or not regular(path):
            return None
        return path.name

    def result(self, job_id: str) -> Path:
        check_job_id(job_id)
        return self.results / f"{job_id}.png"

    def record(self, job_id: str) -> Path:
        check_job_id(job_id)
        return self.jobs / f"{job_id}.json"


def regular(path: Path) -> bool:
    """Whether ``path`` itself is a regular file: a symbolic link (to anything) is not."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise Refused(404, "no such job")
    return job_id


def new_job_id() -> str:
    return secrets.token_hex(8)


def new_upload_stem() -> str:
    return secrets.token_hex(16)
