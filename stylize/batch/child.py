"""One batch job in a process of its own: ``python -m stylize.batch.child``, started by a Dask worker's task.

Caffe aborts the whole process on a fatal error and holds the GIL while it
computes, so a job never runs inside the worker process: here it can crash
alone, and the worker stays responsive to its scheduler.

Protocol: the task writes a pickled ``Order`` to stdin and keeps stdin
open; this process writes one JSON object per line to its stdout (events,
the last one ``finished``, ``failed`` or ``cancelled``); anything else that
prints goes to stderr. SIGTERM cancels the job (a checkpoint is written,
no output). When the task's process dies (its worker was killed), this one
dies too: on Linux at once (PR_SET_PDEATHSIG), elsewhere when it sees
stdin close. The retried task then resumes from the last checkpoint.
"""
from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO

from stylize.core.run import events
from stylize.core.errors import INTERNAL_ERROR_EXIT, StylizeError, one_line
from stylize.core.run.job import Cancelled

from .jobs import BatchJob

#: Seconds between two progress events (every checkpoint and the last step are always sent).
PROGRESS_EVERY = 0.5
#: Exit status after a cancel (as Ctrl-C's).
CANCELLED_EXIT = 130
_PR_SET_PDEATHSIG = 1


@dataclass
class Order:
    """What the task asks of this process."""

    job: BatchJob
    #: BLAS threads (the cores the task holds on its worker).
    threads: int
    #: The task's process: this one must not outlive it.
    parent: int


def main() -> int:
    order: Order = pickle.load(sys.stdin.buffer)
    out = _events_stream()
    _die_with(order.parent)
    try:
        job = order.job.job(resume=True, threads=order.threads)
    except StylizeError as e:
        _send(out, "failed", message=one_line(e), exit_code=e.exit_code)
        return e.exit_code
    signal.signal(signal.SIGTERM, lambda *_: job.cancel())
    reporter = _Reporter(out, job.first_step)
    try:
        job.run(reporter)
    except Cancelled as e:
        _send(out, "cancelled", step=e.step, checkpoint=None if e.checkpoint is None else str(e.checkpoint))
        return CANCELLED_EXIT
    except StylizeError as e:
        _send(out, "failed", message=one_line(e), exit_code=e.exit_code)
        return e.exit_code
    except Exception as e:  # a bug, reported for this job alone
        _send(out, "failed", message=f"internal error, please report it: {type(e).__name__}: {one_line(e)}",
              exit_code=INTERNAL_ERROR_EXIT)
        return INTERNAL_ERROR_EXIT
    return 0


class _Reporter:
    """The Job's events, as the few JSON lines the task forwards to the batch's client."""

    def __init__(self, out: IO[str], first_step: int):
        self.out, self.first_step, self.next = out, first_step, 0.0

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.Started):
            _send(self.out, "started", first_step=event.first_step, total=event.plan.iterations,
                  seconds=event.estimate.seconds)
        elif isinstance(event, events.Step):
            if time.monotonic() >= self.next or event.step == event.total:
                self.next = time.monotonic() + PROGRESS_EVERY
                _send(self.out, "step", step=event.step, total=event.total, elapsed=event.elapsed, eta=event.eta)
        elif isinstance(event, events.CheckpointWritten):
            _send(self.out, "checkpoint", step=event.step)
        elif isinstance(event, events.Finished):
            _send(self.out, "finished", output=str(event.output), seconds=event.seconds,
                  first_step=self.first_step)


def _send(out: IO[str], kind: str, **fields) -> None:
    out.write(json.dumps({"kind": kind, **fields}) + "\n")
    out.flush()


def _events_stream() -> IO[str]:
    """Stdout, kept for events only: whatever else prints (Python or C code) goes to stderr."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def _die_with(parent: int) -> None:
    """End this process when ``parent`` ends, so a killed worker leaves no job running behind it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)

    def watch() -> None:
        sys.stdin.buffer.read()  # returns when the task's end of the pipe closes
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="stylize-batch-parent").start()


if __name__ == "__main__":
    sys.exit(main())
