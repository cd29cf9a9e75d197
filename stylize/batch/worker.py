"""The Dask task of one job: runs it in a child process, forwards its progress, returns its result.

The task returns a result for everything the job itself decides (done,
failed, cancelled), so Dask retries nothing of that; only when the worker
process dies (killed, out of memory) does the scheduler run the task again
elsewhere (its ``allowed-failures``), and the job then resumes from its
checkpoint.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from .child import Order
from .jobs import BatchJob

#: Seconds between two looks at the batch's cancel event.
CANCEL_POLL = 0.5
#: Lines of the child's stderr kept to explain a crash.
STDERR_TAIL = 20
#: BLAS variables set in the child, so that its BLAS starts with the job's threads.
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Task:
    """What the client sends with each job."""

    number: int
    job: BatchJob
    #: BLAS threads: the cores the task holds (its resource); None: the worker's share of its machine.
    threads: int | None
    #: Run a finished job again (--force); otherwise a finished output is left alone.
    force: bool
    #: The batch's event topic and cancel event (Dask names).
    topic: str
    cancel_event: str


def run(task: Task) -> dict[str, Any]:
    """Run ``task``'s job on this worker; a dict of its outcome (``status``: done, skipped, failed, cancelled)."""
    from distributed import Event, get_worker

    worker = get_worker()
    cancel = Event(task.cancel_event)

    def result(status: str, **fields) -> dict[str, Any]:
        return {"number": task.number, "status": status, "worker": worker.address, **fields}

    if cancel.is_set():
        return result("cancelled", step=None)
    if not task.force and task.job.finished:  # e.g. an attempt on a worker that died just after writing it
        return result("skipped")
    threads = task.threads or worker_threads(worker)
    child = _start(task, threads)
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
    last: list[dict] = []
    readers = [threading.Thread(target=_read_stderr, args=(child, tail), daemon=True),
               threading.Thread(target=_read_events, args=(child, task, worker, last), daemon=True)]
    for reader in readers:
        reader.start()
    cancelled = False
    while True:
        try:
            child.wait(timeout=CANCEL_POLL)
            break
        except subprocess.TimeoutExpired:
            if not cancelled and cancel.is_set():
                cancelled = True
                child.send_signal(signal.SIGTERM)  # the job writes a checkpoint and stops
    for reader in readers:
        reader.join(timeout=5)
    child.stdin.close()
    final = last[-1] if last else {}
    if final.get("kind") == "finished":
        return result("done", output=final["output"], seconds=final["seconds"], first_step=final["first_step"],
                      threads=threads)
    if final.get("kind") == "failed":
        return result("failed", error=final["message"], exit_code=final["exit_code"], threads=threads)
    if final.get("kind") == "cancelled" or cancelled:  # also when SIGTERM came before the job could catch it
        return result("cancelled", step=final.get("step"), threads=threads)
    return result("failed", error=_crash(child.returncode, tail), exit_code=1, threads=threads)


def worker_threads(worker) -> int:
    """BLAS threads of a job on a worker declaring no ``cores``: its machine's cores over its task slots."""
    declared = worker.state.total_resources.get("cores")
    if declared:
        return max(1, int(declared))
    return max(1, (os.cpu_count() or 1) // max(1, worker.state.nthreads))


def _start(task: Task, threads: int) -> subprocess.Popen:
    env = {**os.environ, **{name: str(threads) for name in BLAS_VARIABLES}}
    child = subprocess.Popen([sys.executable, "-m", "stylize.batch.child"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)  # a Ctrl-C in the terminal is the client's to handle
    child.stdin.write(pickle.dumps(Order(task.job, threads, os.getpid())))
    child.stdin.flush()  # and kept open: the child ends when it closes (see child._die_with)
    return child


def _read_events(child: subprocess.Popen, task: Task, worker, last: list[dict]) -> None:
    """Forward the child's progress to the client (Dask worker events under the batch's topic)."""
    for line in child.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        last.append(event)
        if event["kind"] in ("started", "step", "checkpoint"):
            worker.log_event(task.topic, {"number": task.number, "worker": worker.address, "time": time.time(),
                                          **event})


def _read_stderr(child: subprocess.Popen, tail: collections.deque) -> None:
    for raw in child.stderr:
        line = raw.decode(errors="replace").strip()
        if line:
            tail.append(line)


def _crash(returncode: int | None, tail: collections.deque) -> str:
    """One line for a job process that died without saying why (Caffe's abort, the kernel's OOM kill)."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = {"SIGABRT": " (Caffe aborts on fatal errors)",
               "SIGKILL": " (killed: out of memory?)"}.get(name, "")
        what = f"the job's process died of {name}{why}"
    else:
        what = f"the job's process exited with status {returncode} without a result"
    fatal = [line for line in tail if re.match(r"F\d{4} ", line)]  # glog's fatal line, before its stack
    last = fatal[-1] if fatal else tail[-1] if tail else None
    return f"{what}: {last}" if last else what
