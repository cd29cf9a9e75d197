"""The HTTP server of ``stylize serve``: aiohttp, one page, a JSON API and server-sent events.

Endpoints (all JSON unless said; errors are ``{"error": message}`` with a 4xx status):

    GET  /                              the page (plain HTML, CSS and JS from static/)
    GET  /static/<file>                 the page's files: a fixed list, nothing else is served
    GET  /api/plugins                   installed plugins and their declared options, presets, defaults, limits
    GET  /api/uploads                   the uploads;  POST: upload one image (multipart, field "file")
    GET  /api/uploads/<id>/thumb.jpg    an upload's thumbnail (encoded by the server)
    DELETE /api/uploads/<id>            delete an upload (409 while a queued or running job reads it)
    GET  /api/storage                   the work folder's limit and usage (bytes)
    GET  /api/jobs                      every job with its state and queue position
    POST /api/jobs                      start a job (queued; one runs at a time)
    GET  /api/jobs/<id>                 one job
    GET  /api/jobs/<id>/events          its events as a stream (text/event-stream), replayed from the start
    GET  /api/jobs/<id>/preview.jpg     its latest preview image
    GET  /api/jobs/<id>/result          its result (PNG with its settings); ?download=1 as an attachment
    POST /api/jobs/<id>/cancel          cancel it (a queued job leaves the queue)
    POST /api/jobs/<id>/resume          resume a cancelled or interrupted job from its checkpoint
    DELETE /api/jobs/<id>               delete an ended job: its result, checkpoint and record
    GET  /api/gallery                   finished results with the settings read from their PNG metadata

Every request: the Host header must name this server when it listens on
loopback (so a web page whose name an attacker points at 127.0.0.1 is
refused: DNS rebinding); with a token, the token must come with it (cookie,
``Authorization: Bearer``, or ``?token=`` once, which sets the cookie).
Every POST: the page's per-server CSRF value in ``X-Stylize-CSRF``, and no
foreign ``Origin`` or ``Sec-Fetch-Site``. Bodies: at most
``max_upload_bytes`` for an upload, ``max_json_bytes`` for anything else,
refused from the declared length before reading, and counted while
streaming when none is declared. No response names a server path
(``privacy``); the work folder stays under its limit (``storage``).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import html
import json
import logging
import re
import secrets
import threading
from pathlib import Path
from typing import Any, Callable

from aiohttp import BodyPartReader, web

from stylize import __version__
from stylize.core.errors import StylizeError, one_line

from . import forms
from .catalogue import catalogue as catalogue_of
from .config import ServeConfig
from .gallery import Gallery
from .jobs import CLOSE, PREVIEW, FINISHED, JobQueue, JobRecord, job_for
from .privacy import Scrubber
from .storage import Storage, default_limit, remove_files as storage_remove
from .uploads import UploadStore, label as _label
from .work import Refused, WorkFolder, check_job_id, regular

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: The only files ``/static/`` serves, with their types.
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
#: Content types of results (a CLI run's --preview may write any output format).
RESULT_TYPES = {".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff"}
TOKEN_COOKIE = "stylize_token"
CSRF_HEADER = "X-Stylize-CSRF"
#: Multipart framing around an upload's bytes (boundaries, part headers).
MULTIPART_SLACK = 16 * 1024
#: Seconds between keep-alive comments on an idle event stream.
HEARTBEAT = 15.0
SAFE_METHODS = frozenset({"GET", "HEAD"})

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class SingleJob:
    """What the preview page of one CLI run reads instead of a queue: that run's record."""

    def __init__(self, record: JobRecord):
        self.record = record

    def get(self, job_id: str) -> JobRecord:
        if job_id != self.record.id:
            raise Refused(404, "no such job")
        return self.record

    def list(self) -> list[JobRecord]:
        return [self.record]

    def stop(self, timeout: float | None = None) -> None:
        self.record.close_subscribers()


class WebApp:
    """The aiohttp application and its handlers, over a job queue (``stylize serve``) or one run (a preview)."""

    def __init__(self, config: ServeConfig, *, single: JobRecord | None = None,
                 result_of: Callable[[JobRecord], Path | None] | None = None):
        self.config = config
        self.csrf = secrets.token_urlsafe(24)
        self.preview_only = single is not None
        self.port = config.port
        self.streams: set[asyncio.Queue] = set()
        if single is not None:
            self.work = self.uploads = self.gallery = self.storage = self.scrubber = None
            self.queue: JobQueue | SingleJob = SingleJob(single)
        else:
            self.work = WorkFolder(config.work)
            self.uploads = UploadStore(self.work, config.max_pixels)
            self.gallery = Gallery(self.work, self.uploads)
            self.queue = JobQueue(self.work, config.preview_every)
            self.queue.after_job = lambda record: self.prune(0)
            self.storage = Storage(self.work, config.max_storage_bytes or default_limit(self.work.root))
            self.scrubber = Scrubber(self.work, self.uploads.label_of)
        self._result_of = result_of or (lambda record: None)
        self._catalogue: dict | None = None
        self._index = (STATIC / "index.html").read_text(encoding="utf-8")
        self._static = {path.name: path for path in STATIC.iterdir()
                        if path.is_file() and path.suffix in STATIC_TYPES}

    # -- the application -------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_json_bytes,
                              middlewares=[self._errors, self._guard])
        app.on_response_prepare.append(self._headers)
        app.on_shutdown.append(self._close_streams)
        get, post = app.router.add_get, app.router.add_post
        get("/", self.index)
        get("/static/{name}", self.static)
        get("/api/jobs", self.list_jobs)
        get("/api/jobs/{job}", self.get_job)
        get("/api/jobs/{job}/events", self.events)
        get("/api/jobs/{job}/preview.jpg", self.preview)
        get("/api/jobs/{job}/result", self.result)
        if not self.preview_only:
            get("/api/plugins", self.plugins)
            get("/api/uploads", self.list_uploads)
            post("/api/uploads", self.upload)
            get("/api/uploads/{upload}/thumb.jpg", self.thumbnail)
            post("/api/jobs", self.create_job)
            post("/api/jobs/{job}/cancel", self.cancel)
            post("/api/jobs/{job}/resume", self.resume)
            get("/api/gallery", self.list_gallery)
            get("/api/storage", self.storage_report)
            app.router.add_delete("/api/uploads/{upload}", self.delete_upload)
            app.router.add_delete("/api/jobs/{job}", self.delete_job)
        return app

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/api/") or request.path == "/":
            response.headers.setdefault("Cache-Control", "no-store")

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as e:
            return _error(e.status, self.clean(e.message))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large: this server takes at most "
                               f"{self.config.max_json_bytes:,} bytes here")
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(e.status, {404: "not found", 405: f"method {request.method} not allowed here"}.get(
                e.status, e.reason))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as e:  # a bug: logged here, one line without a traceback or a path for the client
            log.exception("%s %s failed", request.method, request.path[:200])
            return _error(500, self.clean(f"internal error, please report it: {type(e).__name__}"))

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Host, token, cross-site and body-size checks, before any handler sees the request."""
        host = (request.host or "").lower()
        if self.config.loopback and host not in self._hosts():
            raise Refused(403, f"unexpected Host {host[:80]!r}: this server answers only as "
                               f"{self._hosts()[0]} (a guard against DNS rebinding)")
        set_cookie = False
        if self.config.token:
            given = _bearer(request) or request.cookies.get(TOKEN_COOKIE) or request.query.get("token", "")
            if not given or not hmac.compare_digest(given.encode(), self.config.token.encode()):
                raise Refused(401, "this server needs its token: open the URL stylize serve printed "
                                   "(it ends in ?token=...)")
            set_cookie = request.cookies.get(TOKEN_COOKIE) != self.config.token
        if request.method not in SAFE_METHODS:
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), self.csrf.encode()):
                raise Refused(403, "cross-site request refused: state-changing requests come from the page "
                                   f"itself (with its {CSRF_HEADER} header)")
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                raise Refused(403, f"cross-site request refused: Origin {origin[:80]!r} is not this server")
            if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
                raise Refused(403, "cross-site request refused (Sec-Fetch-Site)")
        limit = self._body_limit(request)
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"request body too large: {request.content_length:,} bytes, this server takes "
                               f"at most {limit:,} here")
        response = await handler(request)
        if set_cookie and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, self.config.token, httponly=True, samesite="Strict", path="/")
        return response

    def _body_limit(self, request: web.Request) -> int:
        if request.method == "POST" and request.path == "/api/uploads":
            return self.config.max_upload_bytes + MULTIPART_SLACK
        return self.config.max_json_bytes

    def _hosts(self) -> tuple[str, ...]:
        """The Host headers a loopback server answers to: its address or ``localhost``, with its port."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        host = self.config.host.strip("[]").lower()
        if host not in ("127.0.0.1", "localhost", "::1"):
            names.insert(0, f"[{host}]" if ":" in host else host)
        hosts = [f"{name}:{self.port}" for name in names]
        return tuple(hosts + (names if self.port == 80 else []))

    async def _close_streams(self, app: web.Application) -> None:
        for queue in list(self.streams):
            queue.put_nowait(CLOSE)

    # -- the page --------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        single = self.queue.list()[0].id if self.preview_only else ""
        page = (self._index.replace("{{csrf}}", html.escape(self.csrf))
                .replace("{{mode}}", "preview" if self.preview_only else "full")
                .replace("{{job}}", html.escape(single)).replace("{{version}}", html.escape(__version__)))
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.StreamResponse:
        path = self._static.get(request.match_info["name"])
        if path is None:
            raise Refused(404, "not found")
        return web.FileResponse(path, headers={"Content-Type": STATIC_TYPES[path.suffix],
                                               "Cache-Control": "no-cache"})

    async def plugins(self, request: web.Request) -> web.Response:
        if self._catalogue is None:
            catalogue = await _in_thread(catalogue_of, self.config)
            for broken in catalogue["broken"]:  # a plugin's import error may name files on the server
                broken["message"] = self.clean(broken["message"])
            self._catalogue = catalogue
        return web.json_response(self._catalogue)

    # -- uploads ---------------------------------------------------------------------------
    async def list_uploads(self, request: web.Request) -> web.Response:
        uploads = await _in_thread(self.uploads.list)
        return web.json_response({"uploads": [upload.to_json() for upload in uploads]})

    async def upload(self, request: web.Request) -> web.Response:
        if request.content_type != "multipart/form-data":
            raise Refused(415, "send the image as multipart/form-data, in a field named \"file\"")
        limit = self.config.max_upload_bytes
        await _in_thread(self._make_room, min(request.content_length or 0, limit))  # room for what is declared
        try:
            reader = await request.multipart()
            part = await reader.next()
            name = part.filename if isinstance(part, BodyPartReader) else None
        except Exception as e:  # aiohttp's parser: a header line too long, a NUL or ESC in one, bad framing
            raise Refused(400, f"malformed multipart body ({one_line(e)[:160]})") from None
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise Refused(400, "no image in the request: send it in a multipart field named \"file\"")
        with self.uploads.receiving() as path, _disk_refusal(name):
            size = 0
            with open(path, "wb") as f:
                while chunk := await _chunk(part):
                    size += len(chunk)
                    if size > limit:
                        raise Refused(413, f"{_label(name)}: more than {limit:,} bytes, the largest "
                                           "upload this server takes (stylize serve --max-upload-mb)")
                    f.write(chunk)
            upload = await _in_thread(self.uploads.accept, path, name)
        try:  # a body of undeclared length is counted now that it is here
            await _in_thread(self._make_room, 0, {upload.id})
        except Refused:
            await _in_thread(storage_remove, self.storage.upload_files(upload.id))
            raise
        return web.json_response(upload.to_json(), status=201)

    async def delete_upload(self, request: web.Request) -> web.Response:
        upload_id = request.match_info["upload"]
        self.work.upload(upload_id)  # 400/404 for anything but an existing upload
        if upload_id in self.queue.needed_uploads():
            raise Refused(409, "a queued or running job uses this upload: cancel it first")
        await _in_thread(storage_remove, self.storage.upload_files(upload_id))
        return web.json_response({"deleted": upload_id, "storage": await _in_thread(self.storage.report)})

    # -- storage ---------------------------------------------------------------------------
    async def storage_report(self, request: web.Request) -> web.Response:
        return web.json_response(await _in_thread(self.storage.report))

    def prune(self, need: int, keep: set[str] = frozenset()) -> list:
        """Delete the oldest uploads and ended jobs no queued or running job needs (nor ``keep``, upload ids)
        until ``need`` more bytes fit."""
        deleted = self.storage.prune(need, self._ended(), self.queue.needed_uploads() | keep, self._forget)
        for item in deleted:
            log.info("work folder over its limit: deleted %s %s (%d bytes)", item.kind, item.id, item.bytes)
        return deleted

    def _make_room(self, need: int, keep: set[str] = frozenset()) -> None:
        self.prune(need, keep)
        if self.storage.usage() + need > self.storage.limit:
            raise Refused(507, f"the work folder is full: {self.storage.limit / 2**20:,.0f} MiB allowed "
                               "(stylize serve --max-storage), all of it held by queued or running jobs' "
                               "images; wait for them to end or delete some")

    def _ended(self) -> list[str]:
        """Jobs that may be deleted: ended ones, and results on disk of jobs no record lists."""
        known = {record.id for record in self.queue.list()}
        orphans = [path.stem for path in self.work.results.glob("*.png") if path.stem not in known]
        return self.queue.ended_ids() + orphans

    def _forget(self, job_id: str) -> None:
        with contextlib.suppress(Refused):
            self.queue.forget(job_id)

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        path = self.uploads.thumbnail(request.match_info["upload"])
        if not regular(path):
            raise Refused(404, "no thumbnail for this upload")
        return web.FileResponse(path, headers={"Content-Type": "image/jpeg"})

    # -- jobs ------------------------------------------------------------------------------
    async def list_jobs(self, request: web.Request) -> web.Response:
        return web.json_response({"jobs": [record.summary() for record in self.queue.list()]})

    def _record(self, request: web.Request) -> JobRecord:
        return self.queue.get(check_job_id(request.match_info["job"]))

    async def get_job(self, request: web.Request) -> web.Response:
        return web.json_response(self._record(request).summary())

    async def create_job(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        job_id = self.queue.new_id()
        job = await _in_thread(self._job, body, job_id, False)
        record = JobRecord(job_id, body, self._job_label(body))
        record.clean = self.clean
        self.queue.submit(record, job)
        return web.json_response(record.summary(), status=201)

    def _job(self, body: Any, job_id: str, resume: bool):
        arguments = forms.job_arguments(body, self.work, self.config)
        try:
            return job_for(arguments, self.work.result(job_id), resume=resume)
        except StylizeError as e:
            raise Refused(400, self.clean(one_line(e))) from None

    def _job_label(self, body: dict) -> str:
        def name(upload_id: str) -> str:
            return self.uploads.get(upload_id).name
        styles = ", ".join(name(style["upload"]) for style in body["styles"])
        return f"{name(body['content'])} \u00d7 {styles}"

    def clean(self, message: str) -> str:
        """A message for the page: upload paths become their labels, no other server path is named."""
        return message if self.scrubber is None else self.scrubber.text(message)

    async def cancel(self, request: web.Request) -> web.Response:
        record = self.queue.cancel(check_job_id(request.match_info["job"]))
        return web.json_response(record.summary())

    async def delete_job(self, request: web.Request) -> web.Response:
        """An ended job, with its result, checkpoint and record (a queued or running one: 409)."""
        job_id = check_job_id(request.match_info["job"])
        known = any(record.id == job_id for record in self.queue.list())
        if known:
            self.queue.forget(job_id)
        elif not regular(self.work.result(job_id)):
            raise Refused(404, "no such job")
        await _in_thread(storage_remove, self.storage.job_files(job_id))
        return web.json_response({"deleted": job_id, "storage": await _in_thread(self.storage.report)})

    async def resume(self, request: web.Request) -> web.Response:
        record = self._record(request)
        if not record.resumable:
            raise Refused(409, f"job {record.id} is {record.state}; only a cancelled or interrupted job "
                               "can be resumed")
        job = await _in_thread(self._job, record.request, record.id, True)
        record.clean = self.clean
        self.queue.resume(record, job)
        if job.resumed is not None and job.resumed.note:  # its checkpoint was damaged: the previous one is used
            record.publish({"type": "warning", "message": self.clean(job.resumed.note)})
        return web.json_response(record.summary())

    async def preview(self, request: web.Request) -> web.Response:
        jpeg = self._record(request).preview_jpeg()
        if jpeg is None:
            raise Refused(404, "no preview yet")
        return web.Response(body=jpeg, content_type="image/jpeg")

    async def result(self, request: web.Request) -> web.StreamResponse:
        """A job's output: ``results/<id>.png`` (also after a restart), or the CLI run's own output."""
        job_id = check_job_id(request.match_info["job"])
        if self.preview_only:
            record = self.queue.get(job_id)
            path = self._result_of(record) if record.state == FINISHED else None
        else:
            path = self.work.result(job_id)
            path = path if regular(path) else None  # a link planted in the folder is not followed
        if path is None or not path.is_file():
            raise Refused(404, "no result for this job (yet)")
        headers = {"Content-Type": RESULT_TYPES.get(path.suffix.lower(), "image/jpeg")}
        if request.query.get("download"):
            headers["Content-Disposition"] = f'attachment; filename="stylize-{job_id}{path.suffix.lower()}"'
        return web.FileResponse(path, headers=headers)

    async def list_gallery(self, request: web.Request) -> web.Response:
        return web.json_response({"results": await _in_thread(self.gallery.items)})

    # -- the event stream ---------------------------------------------------------------------
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


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise Refused(415, "send the job as JSON (Content-Type: application/json)")
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Refused(400, f"the request body is not valid JSON ({one_line(e)})") from None
    except RecursionError:
        raise Refused(400, "the request body is JSON nested too deeply") from None


@contextlib.contextmanager
def _disk_refusal(name: str | None):
    """The server's disk refusing an upload (full, a file-size limit) is a 507 naming the upload, not a 500."""
    try:
        yield
    except OSError as e:
        raise Refused(507, f"{_label(name)}: the server could not store it ({e.strerror or type(e).__name__}); "
                           "delete some uploads or results, or try later") from None


async def _chunk(part: BodyPartReader) -> bytes:
    """The next chunk of an upload's body; a malformed body is a 400, whatever aiohttp's parser raises."""
    try:
        return await part.read_chunk(1 << 16)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as e:
        raise Refused(400, f"malformed multipart body ({one_line(e)[:160]})") from None


async def _in_thread(function, *args):
    """Run blocking work (image decoding, plugin loading, a Job's set-up) off the server's loop."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, *args))


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
