"""Jobs of the web app: a queue run one at a time by a worker thread, each job's record saved in the work folder.

Each job is a ``record.JobRecord`` (its state, events and preview). A record
is saved in ``jobs/<id>.json`` at every change of state. Stopping the queue
cancels the running job after its current iteration, which keeps its
checkpoint; a server started again on the same work folder lists the jobs
that had not finished as interrupted, to be resumed from the page.
"""
from __future__ import annotations

import collections
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable

from stylize.core.run import checkpoint as checkpoints
from stylize.core.run import events
from stylize.core.errors import StylizeError, one_line
from stylize.core.io.files import atomic_write
from stylize.core.run.job import Cancelled, Job

from .privacy import public_metadata
from .record import CANCELLED, FAILED, INTERRUPTED, QUEUED, RUNNING, JobRecord
from .work import JOB_ID, UPLOAD_ID, Refused, WorkFolder, new_job_id, regular

log = logging.getLogger(__name__)

#: Jobs that keep their whole event log once over (the loss curve a page replays); older ones keep their end.
KEEP_LOGS = 20


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

        warnings = _Warnings(record)  # a checkpoint the disk refused: said on the page
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
    """Warnings the running job logs, published in its log for the page.

    Made on the thread that runs the job and deaf to the others: the logger is the whole process's, and a job
    made meanwhile on another thread (a resume reading a damaged checkpoint) publishes its own warnings.
    """

    def __init__(self, record: JobRecord):
        super().__init__(logging.WARNING)
        self.record, self.thread = record, threading.get_ident()

    def emit(self, entry: logging.LogRecord) -> None:
        if entry.thread != self.thread:
            return
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
