"""One job of the web app as the page sees it: its state, its events as a JSON log a reloaded page replays, its preview.

A ``JobRecord`` holds a job's request, its state (queued with its position,
running, finished, failed, cancelled, interrupted), the log of its events as
JSON (so that a page that reloads reattaches and replays them) and its
latest preview as JPEG. Events arrive on the worker thread (``Job.run``'s
handler) and are handed to subscribers (the event streams, on the server's
loop) through a callback each.
"""
from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from typing import Any, Callable

from stylize.core.run import events, plan_text
from stylize.core.run.job import Job

from .uploads import encode_jpeg

log = logging.getLogger(__name__)

QUEUED, RUNNING, FINISHED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "finished", "failed", "cancelled", "interrupted")
TERMINAL = frozenset({FINISHED, FAILED, CANCELLED, INTERRUPTED})
#: Long side of the preview images sent to the page (the result itself is full size).
PREVIEW_LENGTH = 768

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
