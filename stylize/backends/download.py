"""Downloading one file over HTTP with pooch, for ``stylize models fetch``.

Weights are hundreds of megabytes from academic servers, so a download must
show that it is moving, survive a dropped connection, and, when it fails,
say why in one line a user can act on instead of a requests traceback.
pooch does the transfer and the sha1 check; this module adds the progress
display, the retry messages, and the wording of failures. Where the file
lands and whether it is the right one are the caller's business
(:mod:`stylize.backends.zoo`, :mod:`stylize.backends.verify`).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from stylize.core import ModelError, one_line

#: Extra download attempts after a network error or a checksum mismatch
#: (pooch waits 1 s, then 2 s, ... between them). HTTP 4xx is not retried.
RETRIES = 2
#: Seconds without data before a download is abandoned.
TIMEOUT = 60
CHUNK = 1 << 16


def download_file(url: str, folder: Path, fname: str, sha1: str | None, label: str) -> Path:
    """Download ``url`` to ``folder/fname`` with pooch (sha1 checked there, retried).

    ``label`` names the download in progress and retry lines. Any failure is a
    one-line :class:`ModelError` ending in "nothing installed", since the
    caller installs only what this returns.
    """
    import pooch
    import requests
    fetcher = pooch.create(path=folder, base_url="", registry={fname: f"sha1:{sha1}" if sha1 else None},
                           urls={fname: url}, retry_if_failed=RETRIES)
    downloader = _Attempts(pooch.HTTPDownloader(progressbar=Progress(label), chunk_size=CHUNK,
                                                timeout=TIMEOUT), label)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # we say what we do ourselves
    try:
        return Path(fetcher.fetch(fname, downloader=downloader))
    except (_Refused, requests.exceptions.RequestException) as e:
        raise ModelError(f"could not download {fname} from {url}: {_download_error(e, url)}; "
                         "nothing installed") from None
    except ValueError as e:  # pooch's hash mismatch
        if sha1 and "hash" in str(e).lower():
            raise ModelError(f"{fname} from {url} does not match its published sha1 {sha1} "
                             "(corrupt or changed download); nothing installed") from None
        raise
    finally:
        logger.setLevel(level)


class _Refused(Exception):
    """A failure that retrying cannot fix (HTTP 4xx); pooch does not retry it."""


class _Attempts:
    """pooch's HTTP downloader, saying when it retries; client errors (4xx) are final."""

    def __init__(self, downloader, label: str):
        self.downloader, self.label, self.count = downloader, label, 0

    def __call__(self, url, output_file, pooch, check_only=False):
        import requests
        if not check_only:
            self.count += 1
            if self.count > 1:
                sys.stderr.write(f"{self.label}: attempt {self.count - 1} failed; retrying "
                                 f"({self.count} of {RETRIES + 1})\n")
        try:
            return self.downloader(url, output_file, pooch, check_only=check_only)
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if 400 <= status < 500:
                raise _Refused(_http_reason(e)) from e
            raise


class Progress:
    """The progress object pooch drives (``total``, ``update``, ``reset``, ``close``).

    Draws a bar on stderr when stderr is a terminal, and one summary line at the end.
    """

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream
        self._total, self.done, self._drawn = 0, 0, 0.0
        self.started = time.monotonic()

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:  # set again on every (re)try
        self._total, self.done, self.started = int(value or 0), 0, time.monotonic()

    def _out(self):
        return self.stream or sys.stderr

    def update(self, n: int) -> None:
        self.done += n
        out = self._out()
        now = time.monotonic()
        if not (hasattr(out, "isatty") and out.isatty()) or now - self._drawn < 0.2:
            return
        self._drawn = now
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac)
            out.write(f"\r{self.label} [{bar:30}] {frac:4.0%} of {_mb(self.total)}")
        else:
            out.write(f"\r{self.label} {_mb(self.done)}")
        out.flush()

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        out = self._out()
        if hasattr(out, "isatty") and out.isatty():
            out.write("\r\033[K")
        seconds = time.monotonic() - self.started
        out.write(f"{self.label}: downloaded {_mb(self.total or self.done)} in {seconds:.0f} s\n")
        out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _http_reason(error) -> str:
    response = error.response
    if response is None:
        return one_line(error)
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _download_error(error: Exception, url: str) -> str:
    """A one-line reason for a failed download."""
    import requests
    host = urlsplit(url).hostname
    if isinstance(error, _Refused):
        return str(error)
    if isinstance(error, requests.exceptions.HTTPError):
        return _http_reason(error)
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off before the whole file arrived (truncated download)"
    if isinstance(error, requests.exceptions.Timeout):
        return f"no answer from {host} within {TIMEOUT} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"cannot connect to {host} (network error; check your connection)"
    return f"{type(error).__name__}: {one_line(error)}"
