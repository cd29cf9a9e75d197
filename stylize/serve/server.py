"""The thread that runs ``stylize serve``'s web app (``app.WebApp``): started, listening, stopped cleanly."""
from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Callable

from aiohttp import web

from stylize.core.errors import StylizeError

from .app import WebApp
from .config import ServeConfig
from .jobs import JobQueue
from .record import JobRecord

__all__ = ["Server", "WebApp"]


class Server:
    """A running server on its own thread: ``start()`` returns once it listens, ``stop()`` shuts it down cleanly.

    Stopping cancels the running job after its current iteration (its
    checkpoint is kept) and leaves queued jobs saved, to be resumed from the
    page by a server started again on the same work folder.
    """

    def __init__(self, config: ServeConfig, *, single: JobRecord | None = None,
                 result_of: Callable[[JobRecord], Path | None] | None = None):
        config.check()
        self.config = config
        self.web = WebApp(config, single=single, result_of=result_of)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
        token = f"?token={self.config.token}" if self.config.token else ""
        return f"http://{shown}:{self.port}/{token}"

    def start(self) -> "Server":
        if isinstance(self.web.queue, JobQueue):
            self.web.queue.start()
        self._thread = threading.Thread(target=self._main, name="stylize-serve-http", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self.web.queue.stop()
            raise self._error
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as e:  # noqa: B036 - handed to the thread that called start()
            self._error = e
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    async def _open(self) -> None:
        self._runner = web.AppRunner(self.web.application(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host or None, self.config.port)
        try:
            await site.start()
        except OSError as e:
            await self._runner.cleanup()
            raise StylizeError(f"cannot listen on {self.config.host}:{self.config.port}: "
                               f"{e.strerror or e}; choose another --port (0 picks a free one)") from None
        sockets = self._runner.addresses
        self.port = self.web.port = sockets[0][1] if sockets else self.config.port

    def stop(self) -> None:
        """Cancel the running job (checkpoint kept), end every event stream and close the server."""
        self.web.queue.stop()
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
