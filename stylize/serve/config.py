"""What a server is started with, and the checks on it made before anything listens.

Binding to anything but loopback needs a token (checked on every request);
a token is refused if it is too short to resist guessing.
"""
from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylize.core.io.config import stylize_home
from stylize.core.errors import UsageError

DEFAULT_PORT = 8765
#: Shortest token accepted: 16 characters of a random token are ~96 bits.
MIN_TOKEN = 16


@dataclass
class ServeConfig:
    """Everything ``stylize serve`` is started with; every limit has a default a laptop can take."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: Checked on every request when set; required for a non-loopback ``host``.
    token: str | None = None
    #: Uploads, results, checkpoints and job records live here, under names the server chooses.
    work: Path = field(default_factory=lambda: stylize_home() / "serve")
    #: Plugin options fixed by whoever starts the server (``--set``), e.g. the files of a backend:
    #: they override what a page sends, and options that are file paths can only be set this way.
    fixed_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: BLAS threads of each run (None: OpenBLAS's own choice).
    threads: int | None = None
    #: A Dask scheduler every job's tiles run on (``Settings.scheduler``; None: on this machine).
    scheduler: str | None = None
    #: Seconds between two preview images of a running job (at most 1/this images a second).
    preview_every: float = 0.25
    #: Largest request body: an upload (bytes). Other requests take at most ``max_json_bytes``.
    max_upload_bytes: int = 50 * 1024 * 1024
    max_json_bytes: int = 64 * 1024
    #: Largest image an upload may declare (pixels), checked before decoding; stricter than the CLI's
    #: ``MAX_PIXELS`` because a server decodes what anyone who reaches it sends.
    max_pixels: int = 40_000_000
    #: Largest ``length`` and ``iterations`` a page may ask for, and the most style images.
    max_length: int = 2048
    max_iterations: int = 10_000
    max_styles: int = 8
    #: Most bytes the work folder may hold (None: ``storage.default_limit``, half of what the disk could give);
    #: the oldest uploads and ended jobs no queued or running job needs are deleted to stay under it.
    max_storage_bytes: int | None = None

    def check(self) -> None:
        """Refuse a configuration that would be unsafe or cannot work, before binding."""
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port {self.port}: give a port from 1 to 65535 (0 picks a free one)")
        if self.token is not None and len(self.token) < MIN_TOKEN:
            raise UsageError(f"the token must have at least {MIN_TOKEN} characters "
                             "(leave it out to have one generated)")
        if not is_loopback(self.host) and not self.token:
            raise UsageError(f"--host {self.host}: binding to an address other machines can reach needs "
                             "a token (stylize serve generates one with --host; the server checks it on "
                             "every request)")
        if self.preview_every < 0:
            raise UsageError(f"preview_every must be 0 or more seconds, got {self.preview_every}")
        for name in ("max_upload_bytes", "max_json_bytes", "max_pixels", "max_length", "max_iterations",
                     "max_styles", "max_storage_bytes"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` stands for is a loopback address (127.0.0.0/8, ::1).

    ``""`` and ``0.0.0.0`` (every interface) are not; a name is resolved, and
    one that does not resolve is not loopback.
    """
    host = host.strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
