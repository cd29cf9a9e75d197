"""The event stream of ``stylize serve``: a job's log replayed, then its live events, as server-sent events.

Events come from the worker thread (``JobRecord``'s subscribers) and are
handed to the server's loop through a queue per stream.
"""
from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import Any

from aiohttp import web

from .record import CLOSE, PREVIEW
from .work import Refused

#: Seconds between keep-alive comments on an idle event stream.
HEARTBEAT = 15.0


class EventStream:
    """``GET /api/jobs/<id>/events`` of ``WebApp`` (a mixin: it reads ``streams`` and ``_record``)."""

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the job's log replayed (after ``Last-Event-ID`` if given), then live.

        Log entries carry their number as the event id; the latest preview
        follows the replay and each new one as it comes (previews carry no
        id: a page only ever needs the latest). The stream ends after the
        job's final state.
        """
        record = self._record(request)
        after = _last_event_id(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        push = functools.partial(_push_threadsafe, loop, queue)
        backlog, preview = record.subscribe(push)
        self.streams.add(queue)
        sent_preview = 0
        try:
            if not backlog and record.terminal:  # a job of an earlier server: its state is all there is
                await _send(response, {"type": "state", "job": record.id, "state": record.state,
                                       "message": record.message})
                return response
            over = bool(backlog) and _final(backlog[-1])
            for entry in backlog[:-1] if over else backlog:
                if entry["seq"] > after:
                    await _send(response, entry, entry["seq"])
            if preview is not None:  # the latest image, before the final state: a page stops reading there
                await _send(response, preview)
                sent_preview = preview["seq"]
            if over:
                if backlog[-1]["seq"] > after:
                    await _send(response, backlog[-1], backlog[-1]["seq"])
                return response
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except asyncio.TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if item is CLOSE:
                    break
                if item is PREVIEW:
                    preview = record.preview
                    if preview is not None and preview["seq"] > sent_preview:
                        await _send(response, preview)
                        sent_preview = preview["seq"]
                    continue
                if item["seq"] > after:
                    await _send(response, item, item["seq"])
                if _final(item):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the page went away (a reload): it reattaches with a new stream
        finally:
            record.unsubscribe(push)
            self.streams.discard(queue)
        return response

    async def _close_streams(self, app: web.Application) -> None:
        for queue in list(self.streams):
            queue.put_nowait(CLOSE)


def _push_threadsafe(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, item: Any) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(queue.put_nowait, item)


def _final(entry: dict) -> bool:
    return entry.get("type") == "state" and entry.get("state") in ("finished", "failed", "cancelled",
                                                                    "interrupted")


async def _send(response: web.StreamResponse, data: dict, event_id: int | None = None) -> None:
    head = f"id: {event_id}\n" if event_id is not None else ""
    await response.write(f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode())


def _last_event_id(request: web.Request) -> int:
    text = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    if not re.fullmatch(r"\d{1,12}", text.strip()):
        raise Refused(400, "Last-Event-ID: expected an event number")
    return int(text)
