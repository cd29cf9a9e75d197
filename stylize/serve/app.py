"""The web app of ``stylize serve``: its routes and handlers (aiohttp): one page, a JSON API, server-sent events.

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

Every request passes ``guard`` first: the Host header must name this server
when it listens on loopback (so a web page whose name an attacker points at
127.0.0.1 is refused: DNS rebinding); with a token, the token must come with
it (cookie, ``Authorization: Bearer``, or ``?token=`` once, which sets the
cookie). Every POST: the page's per-server CSRF value in ``X-Stylize-CSRF``,
and no foreign ``Origin`` or ``Sec-Fetch-Site``. Bodies: at most
``max_upload_bytes`` for an upload, ``max_json_bytes`` for anything else,
refused from the declared length before reading, and counted while
streaming when none is declared. No response names a server path
(``privacy``); the work folder stays under its limit (``storage``, ``room``);
events stream from ``stream``; ``server`` runs the app on its own thread.
"""
from __future__ import annotations

import asyncio
import functools
import html
import json
import logging
import secrets
from pathlib import Path
from typing import Any, Callable

from aiohttp import BodyPartReader, web

from stylize import __version__
from stylize.core.errors import StylizeError, one_line

from . import forms
from .catalogue import catalogue as catalogue_of
from .config import ServeConfig
from .gallery import Gallery
from .guard import Guard
from .jobs import JobQueue, job_for
from .record import FINISHED, JobRecord
from .privacy import Scrubber
from .room import Room, _disk_refusal
from .storage import Storage, default_limit, remove_files as storage_remove
from .stream import EventStream
from .uploads import UploadStore, label as _label
from .work import Refused, WorkFolder, check_job_id, regular

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: The only files ``/static/`` serves, with their types.
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
#: Content types of results (a CLI run's --preview may write any output format).
RESULT_TYPES = {".png": "image/png", ".tif": "image/tiff", ".tiff": "image/tiff"}

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


class WebApp(Guard, Room, EventStream):
    """The aiohttp application and its handlers, over a job queue (``stylize serve``) or one run (a preview).

    Its request guard, pruning and event stream come from ``Guard``, ``Room`` and ``EventStream``.
    """

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
