"""``stylize run --preview``: the web app's live preview page for one run of the command line.

    with preview_server(job, enabled=preview) as page, Progress(quiet) as progress:
        image = job.run(page.watch(progress), preview_every=page.every)

The page is the one ``stylize serve`` shows, reduced to that run: its
preview image, loss curve, level and ETA, served on 127.0.0.1 at a free
port for as long as the run lasts (its URL is printed on stderr). With
``enabled=False`` nothing is started or imported: ``watch`` hands back the
handler it is given and ``every`` is None (no preview images are made).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)

EventHandler = Callable[[object], None]


class Preview:
    """A running preview page: its ``url``, the throttle ``every`` to pass to ``Job.run``, and ``watch``."""

    def __init__(self, url: str | None, record=None, every: float | None = None):
        self.url, self._record, self.every = url, record, every

    def watch(self, handler: EventHandler | None = None) -> EventHandler | None:
        """An event handler that feeds the page, then calls ``handler`` (whose exceptions pass through)."""
        record = self._record
        if record is None:
            return handler

        def on_event(event) -> None:
            try:
                record.on_event(event)
            except Exception:  # the page is a bystander: it never stops the run
                log.warning("preview page: could not publish %s", type(event).__name__, exc_info=True)
            if handler is not None:
                handler(event)
        return on_event


@contextlib.contextmanager
def preview_server(job, *, enabled: bool = True, host: str = "127.0.0.1", port: int = 0,
                   preview_every: float = 0.25, echo: Callable[[str], None] | None = None,
                   linger: float = 2.0) -> Iterator[Preview]:
    """Serve the live preview page of ``job`` (a ``stylize.Job``) while the block runs.

    On exit the page is given up to ``linger`` seconds to receive the run's
    last events (the final image stays on it), then the server stops.
    """
    if not enabled:
        yield Preview(None)
        return
    from .config import ServeConfig
    from .record import RUNNING, JobRecord
    from .server import Server
    from .work import new_job_id

    meta = getattr(job, "metadata", {}) or {}
    names = [Path(part).name for part in [meta.get("stylize:content", ""), *meta.get("stylize:style", "").split(", ")]]
    label = f"{names[0]} \u00d7 {', '.join(names[1:])}" if len(names) > 1 and names[0] else "stylize run"
    record = JobRecord(new_job_id(), {}, label, state=RUNNING)
    server = Server(ServeConfig(host=host, port=port, preview_every=preview_every), single=record,
                    result_of=lambda _: getattr(job, "output", None)).start()
    (echo or _stderr)(f"live preview: {server.url}")
    try:
        yield Preview(server.url, record, preview_every)
    finally:
        deadline = time.monotonic() + linger
        while record.watched and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
