"""Jobs of the web app: a queue run one at a time by a worker thread, each job's events kept for whoever watches.

A ``JobRecord`` is one job as the page sees it: its request, its state
(queued with its position, running, finished, failed, cancelled,
interrupted), the log of its events as JSON (so that a page that reloads
reattaches and replays them) and its latest preview as JPEG. Events arrive
on the worker thread (``Job.run``'s handler) and are handed to subscribers
(the event streams, on the server's loop) through a callback each.

A record is saved in ``jobs/<id>.json`` at every change of state. Stopping
the queue cancels the running job after its current iteration, which keeps
its checkpoint; a server started again on the same work folder lists the
jobs that had not finished as interrupted, to be resumed from the page.
"""
from __future__ import annotations

import base64
import collections
import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from stylize.core import checkpoint as checkpoints
from stylize.core import events, plan_text
from stylize.core.errors import StylizeError, one_line
from stylize.core.files import atomic_write
from stylize.core.job import Cancelled, Job

from .privacy import public_metadata
from .uploads import encode_jpeg
from .work import JOB_ID, UPLOAD_ID, Refused, WorkFolder, new_job_id, regular

log = logging.getLogger(__name__)

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "finished", "failed", "cancelled", "interrupted")
TERMINAL = frozenset({FINISHED, FAILED, CANCELLED, INTERRUPTED})
#: Long side of the preview images sent to the page (the result itself is full size).
PREVIEW_LENGTH = 768
#: Jobs that keep their whole event log once over (the loss curve a page replays); older ones keep their end.
KEEP_LOGS = 20

#: What a subscriber receives: a log entry (a dict), PREVIEW (a new preview is there) or CLOSE.
PREVIEW, CLOSE = "preview", "close"
Subscriber = Callable[[Any], None]


class JobRecord:
    """One job as the page sees it; thread-safe (events come from the worker, readers from the server)."""

    def __init__(self, job_id: str, request: dict, label: str, *, state: str = QUEUED,
                 created: float | None = None, result_url: str | None = None):
        self.id, self.request, self.label = job_id, request, label
        self.state = state
        self.position: int | None = None
        self.created = time.time() if created is None else created
        self.ended: float | None = None
        self.message: str | None = None
        self.step, self.total = 0, None
        self.checkpoint = False
        self.result_url = result_url if result_url is not None else f"/api/jobs/{job_id}/result"
        self.job: Job | None = None
        #: Rewrites a message for the page (the server replaces its upload paths by their labels).
        self.clean: Callable[[str], str] = lambda message: message
        #: Why the run is being stopped by the server rather than the user (state interrupted).
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._log: list[dict] = []
        self._seq = 0
        self._subscribers: list[Subscriber] = []
        self._preview: dict | None = None

    # -- what the page reads ---------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "state": self.state, "position": self.position,
                "created": self.created, "ended": self.ended, "message": self.message, "step": self.step,
                "total": self.total, "checkpoint": self.checkpoint, "resumable": self.resumable,
                "result": self.result_url if self.state == FINISHED else None, "request": self.request}

    @property
    def resumable(self) -> bool:
        return self.state in (CANCELLED, INTERRUPTED) and bool(self.request)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def preview(self) -> dict | None:
        with self._lock:
            return self._preview

    def subscribe(self, push: Subscriber) -> tuple[list[dict], dict | None]:
        """Register ``push`` and return the log so far and the latest preview: nothing is missed or repeated."""
        with self._lock:
            self._subscribers.append(push)
            return list(self._log), self._preview

    def unsubscribe(self, push: Subscriber) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._subscribers.remove(push)

    @property
    def watched(self) -> bool:
        """Whether an event stream is attached."""
        with self._lock:
            return bool(self._subscribers)

    def close_subscribers(self) -> None:
        self._notify(CLOSE)

    # -- what the worker writes --------------------------------------------------------------
    def publish(self, entry: dict) -> dict:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "job": self.id, **entry}
            self._log.append(entry)
        self._notify(entry)
        return entry

    def _notify(self, item: Any) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for push in subscribers:
            try:
                push(item)
            except Exception:  # a closed loop or a gone client must not stop the run
                log.debug("subscriber of job %s failed", self.id, exc_info=True)

    def set_state(self, state: str, **extra: Any) -> None:
        self.state = state
        if state in TERMINAL:
            self.ended = time.time()
        self.publish({"type": "state", "state": state, "position": self.position, **extra})

    def set_preview(self, step: int, image, start: bool = False) -> None:
        """The latest picture, as JPEG; ``start``: the run's start (``FirstImage``), before its first iteration."""
        jpeg = encode_jpeg(image, PREVIEW_LENGTH)
        with self._lock:
            seq = (self._preview or {"seq": 0})["seq"] + 1
            self._preview = {"type": "preview", "job": self.id, "seq": seq, "step": step,
                             "width": image.shape[1], "height": image.shape[0], "start": start,
                             "jpeg": base64.b64encode(jpeg).decode("ascii")}
        self._notify(PREVIEW)

    def preview_jpeg(self) -> bytes | None:
        preview = self.preview
        return None if preview is None else base64.b64decode(preview["jpeg"])

    def compact(self) -> None:
        """Keep only the last entry of a job that is over (memory stays bounded however many jobs ran)."""
        with self._lock:
            self._log = self._log[-1:]
            self._preview = None

    def reset_log(self) -> None:
        """Forget the events of an earlier run (before a resumed one); numbering goes on."""
        with self._lock:
            self._log = []

    def on_event(self, event: events.Event) -> None:
        """``Job.run``'s event handler: each event as a JSON log entry, previews as JPEG."""
        if isinstance(event, events.Started):
            self.total, self.step = event.plan.iterations, event.first_step
            estimate = event.estimate
            self.publish({"type": "started", "total": event.plan.iterations, "first_step": event.first_step,
                          "levels": [{"index": lv.index, "length": lv.length, "shape": list(lv.shape),
                                      "iterations": lv.iterations, "first_step": lv.first_step}
                                     for lv in event.plan.levels],
                          "memory_bytes": estimate.memory_bytes, "seconds": estimate.seconds,
                          "plan": plan_text.summary(event.plan, event.first_step),
                          "plan_table": plan_text.table(event.plan)})
        elif isinstance(event, events.FirstImage):  # before the network loads: a picture at once
            self.set_preview(self.step, event.image, start=True)
        elif isinstance(event, events.LevelStarted):
            level = event.level
            self.publish({"type": "level", "level": level.index, "levels": event.levels,
                          "shape": list(level.shape), "iterations": level.iterations})
        elif isinstance(event, events.Step):
            self.step = event.step
            if event.preview is not None:
                self.set_preview(event.step, event.preview)
            self.publish({"type": "step", "step": event.step, "total": event.total, "level": event.level,
                          "levels": event.levels, "loss": _number(event.loss),
                          "terms": {name: _number(value) for name, value in event.terms.items()},
                          "elapsed": round(event.elapsed, 3),
                          "eta": None if event.eta is None else round(event.eta, 1)})
        elif isinstance(event, events.CheckpointWritten):
            self.checkpoint = True
            self.publish({"type": "checkpoint", "step": event.step})
        elif isinstance(event, events.Finished):
            self.set_preview(self.step, event.image)
            self.checkpoint = False
            self.message = f"finished in {event.seconds:.0f} s"
            self.set_state(FINISHED, result=self.result_url, seconds=round(event.seconds, 2),
                           width=event.image.shape[1], height=event.image.shape[0])
        elif isinstance(event, events.Failed):
            self.message = self.clean(event.message)
            self.set_state(FAILED, message=self.message)
        elif isinstance(event, events.Cancelled):
            self.checkpoint = event.checkpoint is not None
            self.step = event.step
            # Stopped by the server (or, for a CLI run's preview, by Ctrl-C) rather than by the user.
            state = INTERRUPTED if self.stop_reason or event.reason == "interrupted" else CANCELLED
            keeps = f"; its checkpoint at iteration {event.step} is kept" if self.checkpoint else ""
            self.message = f"{self.stop_reason or event.reason} at iteration {event.step}{keeps}"
            self.set_state(state, step=event.step, checkpoint=self.checkpoint, message=self.message)

    # -- saved state ---------------------------------------------------------------------
    def saved(self) -> dict[str, Any]:
        return {"id": self.id, "request": self.request, "label": self.label, "state": self.state,
                "created": self.created, "ended": self.ended, "message": self.message, "step": self.step,
                "total": self.total, "checkpoint": self.checkpoint}

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> "JobRecord":
        record = cls(data["id"], data.get("request") or {}, str(data.get("label", "")),
                     state=data.get("state", INTERRUPTED), created=data.get("created"))
        record.ended, record.message = data.get("ended"), data.get("message")
        record.step, record.total = int(data.get("step") or 0), data.get("total")
        record.checkpoint = bool(data.get("checkpoint"))
        return record


def _number(value: float) -> float | None:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


class JobQueue:
    """Jobs waiting, one running at a time on a worker thread; records kept in the work folder."""

    def __init__(self, work: WorkFolder, preview_every: float | None):
        self.work, self.preview_every = work, preview_every
        self._records: dict[str, JobRecord] = {}
        self._waiting: collections.deque[JobRecord] = collections.deque()
        self._current: JobRecord | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._worker: threading.Thread | None = None
        #: Called on the worker thread after each job ends (the server prunes the work folder there).
        self.after_job: Callable[[JobRecord], None] = lambda record: None

    # -- life ------------------------------------------------------------------------------
    def start(self) -> "JobQueue":
        self._load()
        self._worker = threading.Thread(target=self._work, name="stylize-serve-worker", daemon=True)
        self._worker.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Cancel the running job (it keeps its checkpoint) and stop the worker; queued jobs stay saved."""
        with self._cond:
            self._stopping = True
            current = self._current
            if current is not None and current.job is not None:
                current.stop_reason = "the server stopped"
                current.job.cancel()
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)
        for record in list(self._records.values()):
            record.close_subscribers()

    def _load(self) -> None:
        """Jobs of an earlier server on this folder; those that had not finished are interrupted now."""
        for path in sorted(self.work.jobs.glob("*.json")):
            if not JOB_ID.fullmatch(path.stem) or not regular(path):
                continue
            try:
                record = JobRecord.from_saved(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("skipping unreadable job record %s", path)
                continue
            if record.state in (QUEUED, RUNNING):
                # The record was saved when the job started; its checkpoint says how far it got.
                step = checkpoints.step_of(checkpoints.path_for(self.work.result(record.id)))
                record.state, record.checkpoint = INTERRUPTED, step is not None
                record.step = step if step is not None else record.step
                record.message = "the server stopped before this job finished" + (
                    f"; its checkpoint at iteration {step} is kept" if step is not None else "")
                self._save(record)
            self._records[record.id] = record
        ordered = sorted(self._records.values(), key=lambda r: r.created)
        self._records = {record.id: record for record in ordered}

    def _save(self, record: JobRecord) -> None:
        try:
            with atomic_write(self.work.record(record.id)) as f:
                f.write(json.dumps(record.saved()).encode())
        except OSError:
            log.exception("cannot save job record %s", record.id)

    # -- what the server asks --------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        record = self._records.get(job_id)
        if record is None:
            raise Refused(404, "no such job")
        return record

    def list(self) -> list[JobRecord]:
        return list(self._records.values())

    def new_id(self) -> str:
        while True:
            job_id = new_job_id()
            if job_id not in self._records and not self.work.record(job_id).exists():
                return job_id

    def submit(self, record: JobRecord, job: Job) -> JobRecord:
        with self._cond:
            if self._stopping:
                raise Refused(503, "the server is stopping")
            record.job = job
            self._records[record.id] = record
            self._waiting.append(record)
            self._save(record)
            self._positions()
            self._cond.notify_all()
        return record

    def resume(self, record: JobRecord, job: Job) -> JobRecord:
        with self._cond:
            if not record.resumable:
                raise Refused(409, f"job {record.id} is {record.state}; only a cancelled or interrupted "
                                   "job can be resumed")
            if self._stopping:
                raise Refused(503, "the server is stopping")
            record.job, record.stop_reason, record.message, record.ended = job, None, None, None
            record.reset_log()
            record.state = QUEUED
            self._waiting.append(record)
            self._save(record)
            self._positions()
            self._cond.notify_all()
        return record

    def cancel(self, job_id: str) -> JobRecord:
        """A queued job leaves the queue; a running one stops after its current iteration."""
        with self._cond:
            record = self.get(job_id)
            if record in self._waiting:
                self._waiting.remove(record)
                record.position = None
                record.message = "cancelled before it started"
                record.set_state(CANCELLED, message=record.message)
                self._save(record)
                self._positions()
            elif record.state == RUNNING and record.job is not None:
                record.job.cancel()
            elif record.terminal:
                raise Refused(409, f"job {job_id} is already {record.state}")
        return record

    def forget(self, job_id: str) -> JobRecord:
        """Drop an ended job's record (its files are the caller's to delete); 409 for a queued or running one."""
        with self._cond:
            record = self.get(job_id)
            if not record.terminal:
                raise Refused(409, f"job {job_id} is {record.state}: cancel it before deleting it")
            del self._records[job_id]
        record.close_subscribers()
        return record

    def ended_ids(self) -> list[str]:
        with self._cond:
            return [record.id for record in self._records.values() if record.terminal]

    def needed_uploads(self) -> set[str]:
        """Uploads a queued or running job reads (never pruned or deleted)."""
        with self._cond:
            return {upload for record in self._records.values() if not record.terminal
                    for upload in uploads_of(record.request)}

    def _positions(self) -> None:
        """Tell each waiting job its place (1: next); call with the lock held."""
        for position, record in enumerate(self._waiting, 1):
            if record.position != position or record.state != QUEUED:
                record.position = position
                record.set_state(QUEUED)

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                record = self._waiting.popleft()
                self._current = record
                record.position = None
                record.set_state(RUNNING)
                self._save(record)
                self._positions()
            try:
                self._run(record)
            finally:
                with self._cond:
                    self._current = None
                    record.job = None  # its images and network go with it
                    self._save(record)
                    self._compact_old()
                    self._cond.notify_all()
                try:
                    self.after_job(record)
                except Exception:  # housekeeping must never stop the queue
                    log.exception("after job %s", record.id)

    def _compact_old(self) -> None:
        over = [record for record in self._records.values() if record.terminal]
        for record in over[:-KEEP_LOGS]:
            record.compact()

    def _run(self, record: JobRecord) -> None:
        job = record.job
        assert job is not None
        def on_event(event: events.Event) -> None:
            try:
                record.on_event(event)
            except Exception:  # showing the run must never stop it
                log.exception("job %s: could not publish %s", record.id, type(event).__name__)

        warnings = _Warnings(record)  # a checkpoint the disk refused, a damaged one replaced: said on the page
        checkpoint_log = logging.getLogger(checkpoints.__name__)
        checkpoint_log.addHandler(warnings)
        try:
            job.run(on_event, preview_every=self.preview_every)
        except Cancelled:
            pass  # the Cancelled event set the state
        except StylizeError:
            pass  # the Failed event carries the message
        except Exception as e:  # Job.run emitted Failed for it already; keep the worker alive
            log.exception("job %s failed", record.id)
            if not record.terminal:
                record.message = record.clean(f"internal error: {type(e).__name__}: {one_line(e)}")
                record.set_state(FAILED, message=record.message)
        finally:
            checkpoint_log.removeHandler(warnings)
        if not record.terminal:  # cannot happen with Job.run's contract; never leave a job "running"
            record.message = record.message or "the run ended without a result"
            record.set_state(FAILED, message=record.message)


class _Warnings(logging.Handler):
    """Warnings logged while a job runs (only one runs at a time), published in its log for the page."""

    def __init__(self, record: JobRecord):
        super().__init__(logging.WARNING)
        self.record = record

    def emit(self, entry: logging.LogRecord) -> None:
        message = entry.getMessage().removeprefix("stylize: warning: ")
        self.record.publish({"type": "warning", "message": self.record.clean(message)})


def job_for(arguments: dict[str, Any], output: Path, *, resume: bool = False) -> Job:
    """The ``Job`` of a request's checked arguments (``forms.job_arguments``), writing ``output``.

    Its result's PNG text names the uploads by id and no server path (``privacy``).
    """
    job = Job(arguments["content"], arguments["style"], arguments["settings"], output=output,
              content_mask=arguments.get("content_mask"), style_masks=arguments.get("style_masks"),
              checkpoint_every=checkpoints.EVERY, resume=resume)
    job.metadata = public_metadata(job.metadata, job.settings, arguments["content"], list(arguments["style"]))
    return job


def uploads_of(request: Any) -> set[str]:
    """The upload ids a job request names (content, styles, masks, init image)."""
    if not isinstance(request, dict):
        return set()
    styles = request.get("styles") if isinstance(request.get("styles"), list) else []
    masks = request.get("style_masks") if isinstance(request.get("style_masks"), list) else []
    settings = request.get("settings") if isinstance(request.get("settings"), dict) else {}
    named = [request.get("content"), request.get("content_mask"), settings.get("init"), *masks,
             *(style.get("upload") for style in styles if isinstance(style, dict))]
    return {name for name in named if isinstance(name, str) and UPLOAD_ID.fullmatch(name)}
