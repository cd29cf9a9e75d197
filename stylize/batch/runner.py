"""Planned jobs run on a Dask cluster: the user's client, a scheduler's address, or a LocalCluster started here.

Dask does the scheduling: one task per job (``worker.run``), resource
constraints so that jobs never share cores (each worker declares its
``cores``; each task holds its job's BLAS threads of them) nor together
need more memory than a worker has (each worker declares its ``memory`` in
bytes; each task holds its plan's peak, and a job larger than every
worker is refused before it is sent, with the largest worker's figure),
and its retries
of tasks whose worker died (the scheduler's ``allowed-failures``). Progress
comes back as Dask worker events under a topic of the batch's own; Ctrl-C
sets a Dask ``Event`` on which every task cancels its job, keeping a
checkpoint.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import queue
import signal
import threading
import time
import uuid
from typing import Callable, Sequence

from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import INTERNAL_ERROR_EXIT, ResourceError, StylizeError, one_line
from stylize.core.planning.memory import format_bytes

from . import worker as tasks
from .events import (CANCELLED, FAILED, SKIPPED, BatchEvent, BatchInterrupted, JobEnded, JobProgress, JobResult,
                     JobStarted)
from .plan import FINISHED, Layout, Planned, asked_threads, local_layout

#: Attempts of a task whose worker died, on the local cluster (Dask's ``allowed-failures``, the first run aside).
RETRIES = 3
#: Seconds to wait for a scheduler, and then for its first worker.
CONNECT_TIMEOUT = 30
#: Seconds the jobs get after Ctrl-C to write their checkpoints and stop.
CANCEL_GRACE = 60
#: Where the local cluster serves Dask's dashboard (another free port if taken; needs bokeh).
DASHBOARD = ":8787"


class Batch:
    """Context manager: starts (or joins) a cluster when some job needs to run; ``run`` runs them.

    ``client``: the user's ``distributed.Client`` (kept open); ``scheduler``:
    the address of a running ``dask scheduler``; neither: a LocalCluster of
    ``local_layout`` (``workers``, ``threads`` override it). ``retries``
    sets the local cluster's ``allowed-failures``; a scheduler elsewhere
    keeps its own.
    """

    def __init__(self, planned: Sequence[Planned], *, client=None, scheduler: str | None = None,
                 workers: int | None = None, retries: int = RETRIES, force: bool = False,
                 dashboard: str | None = DASHBOARD):
        self.planned = list(planned)
        self.client, self.scheduler, self.force = client, scheduler, force
        self.workers, self.retries, self.dashboard = workers, retries, dashboard
        self.cluster = None
        self._owns_client = False
        #: The local cluster's layout (None on another cluster).
        self.layout: Layout | None = None
        #: BLAS threads of a job that sets none; None: each worker decides (no ``cores`` declared).
        self.threads: int | None = None
        #: Whether every worker declares ``cores``, so that tasks hold their threads as a resource.
        self.constrained = False
        #: Jobs that can run at once, and the largest ``cores`` a worker declares.
        self.slots = 1
        self.most_cores = 0
        #: Whether every worker declares ``memory`` (tasks then hold their jobs' peak bytes of it), and the
        #: most bytes a worker offers (its declared ``memory``, else Dask's ``--memory-limit``; 0: unknown).
        self.memory_constrained = False
        self.most_memory = 0
        self.id = uuid.uuid4().hex[:12]

    @property
    def needed(self) -> bool:
        return any(p.runs for p in self.planned)

    def __enter__(self) -> "Batch":
        if self.needed:
            self._connect()
            try:
                self._survey()
            except BaseException:
                self._close()
                raise
        return self

    def __exit__(self, *exc) -> bool:
        self._close()
        return False

    def _connect(self) -> None:
        import dask
        from distributed import Client, LocalCluster

        if self.client is not None:
            return
        self._owns_client = True
        if self.scheduler is not None:
            try:
                self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as e:
                raise StylizeError(f"--scheduler {self.scheduler}: cannot connect ({one_line(e)}); start one "
                                   f"with `dask scheduler` and workers with `dask worker {self.scheduler}`") from None
            return
        self.layout = local_layout(self.planned, workers=self.workers)
        with dask.config.set({"distributed.scheduler.allowed-failures": self.retries}), _terminal_sigint_ignored():
            memory = {"memory": self.layout.memory} if self.layout.memory else {}
            self.cluster = LocalCluster(n_workers=self.layout.workers, threads_per_worker=1, processes=True,
                                        resources={"cores": self.layout.threads, **memory}, memory_limit=0,
                                        dashboard_address=self.dashboard, silence_logs=logging.ERROR)
        self.client = Client(self.cluster)

    def _survey(self) -> None:
        """The workers' declared cores decide each job's threads and whether tasks hold them."""
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise StylizeError(f"no Dask worker joined the scheduler within {CONNECT_TIMEOUT} s; start one with "
                               f"`dask worker {self.client.scheduler.address} --nthreads 1 --resources cores=N`") \
                from None
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        declared = [w.get("resources", {}).get("cores") for w in workers]
        self.constrained = all(declared)
        if self.constrained:
            self.most_cores = int(max(declared))
            self.threads = int(min(declared))
            threads = asked_threads(self.planned) or self.threads
            self.slots = sum(min(w["nthreads"], int(w["resources"]["cores"]) // threads) for w in workers) or 1
        else:
            self.slots = sum(w["nthreads"] for w in workers)
        memory = [w.get("resources", {}).get("memory") for w in workers]
        self.memory_constrained = all(memory)
        limits = memory if self.memory_constrained else [w.get("memory_limit") or 0 for w in workers]
        self.most_memory = int(max(limits)) if all(limits) else 0

    @property
    def dashboard_link(self) -> str | None:
        """Dask's dashboard, where the scheduler serves one (it needs bokeh)."""
        if self.client is None or "dashboard" not in self.client.scheduler_info(n_workers=0).get("services", {}):
            return None
        if self.cluster is not None and importlib.util.find_spec("bokeh") is None:
            return None  # the local scheduler's server answers, but has no pages without bokeh
        return self.client.dashboard_link

    @property
    def address(self) -> str | None:
        return None if self.client is None else self.client.scheduler.address

    def _close(self) -> None:
        if self._owns_client and self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    # -- running ----------------------------------------------------------------------------
    def run(self, on_event: Callable[[BatchEvent], None] | None = None) -> list[JobResult]:
        """Run every planned job still to do; one result per job, in order.

        Raises ``BatchInterrupted`` (with the results) after Ctrl-C, once the
        running jobs have written their checkpoints (a second Ctrl-C stops
        waiting for them).
        """
        emit = on_event or (lambda event: None)
        run = _BatchRun(self, emit)
        for planned in self.planned:
            if not planned.runs:
                run.end(_decided(planned))
        todo = [p for p in self.planned if p.runs]
        if todo:
            run.execute(todo)
        return run.sorted()


@contextlib.contextmanager
def _terminal_sigint_ignored():
    """Processes started inside ignore SIGINT (and Python leaves it so), the only way to keep them alive
    through a Ctrl-C in a terminal, which signals the whole process group: the local cluster's workers
    must survive it, so that their tasks can cancel their jobs and keep checkpoints as the client asks."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it receives Ctrl-C
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _decided(planned: Planned) -> JobResult:
    """The result of a job decided while planning: finished before, or refused."""
    if planned.state == FINISHED:
        return JobResult(planned.number, planned.job, SKIPPED)
    return JobResult(planned.number, planned.job, FAILED, error=planned.error, exit_code=planned.exit_code)


class _BatchRun:
    """One call of ``Batch.run``: the futures, the events queue and what each job did so far."""

    def __init__(self, batch: Batch, emit: Callable[[BatchEvent], None]):
        self.batch, self.emit = batch, emit
        self.results: dict[int, JobResult] = {}
        self.events: queue.Queue = queue.Queue()
        self.futures: dict = {}
        self.attempts: dict[int, int] = {}
        self.started: dict[int, float] = {}
        self.topic = f"stylize-batch-{batch.id}"
        self.cancel_event = f"{self.topic}-cancel"

    def sorted(self) -> list[JobResult]:
        return [self.results[number] for number in sorted(self.results)]

    def end(self, result: JobResult) -> None:
        self.results[result.number] = result
        self.emit(JobEnded(result.number, result))

    def execute(self, todo: list[Planned]) -> None:
        client = self.batch.client
        client.subscribe_topic(self.topic, lambda event: self.events.put(("event", event[1])))
        try:
            for planned in todo:
                self._submit(planned)
            try:
                self._wait(deadline=None)
            except KeyboardInterrupt:
                self._cancel()
                raise BatchInterrupted(self.sorted()) from None
        finally:
            client.unsubscribe_topic(self.topic)

    def _submit(self, planned: Planned) -> None:
        batch, job = self.batch, planned.job
        threads = job.settings.threads or batch.threads
        if batch.constrained and threads > batch.most_cores:
            self.end(JobResult(planned.number, job, FAILED, exit_code=2,
                               error=f"it asks for {threads} threads, but no worker declares more than "
                                     f"{batch.most_cores} cores (dask worker --resources cores=N)"))
            return
        need = planned.memory_bytes
        if need and batch.most_memory and need > batch.most_memory:
            self.end(JobResult(planned.number, job, FAILED, exit_code=ResourceError.exit_code,
                               error=f"it needs about {format_bytes(need)} at its peak, more than the largest "
                                     f"worker offers ({format_bytes(batch.most_memory)}: dask worker --resources "
                                     "memory=BYTES); give it a smaller --length or --tile-size, or a larger worker"))
            return
        if batch.force:
            checkpoints.remove(job.checkpoint)  # starting over: a retry must not resume an older run
        task = tasks.Task(planned.number, job, threads, batch.force, self.topic, self.cancel_event)
        resources = {**({"cores": threads} if batch.constrained else {}),
                     **({"memory": need} if batch.memory_constrained and need else {})}
        future = batch.client.submit(tasks.run, task, key=f"stylize-{batch.id}-job-{planned.number}", pure=False,
                                     resources=resources or None)
        self.futures[future.key] = (planned, future)
        future.add_done_callback(lambda f: self.events.put(("done", f.key)))

    def _wait(self, deadline: float | None) -> None:
        """Handle events until every job has ended (or ``deadline``, a ``time.monotonic()``, passes)."""
        while len(self.results) < len(self.batch.planned):
            if deadline is not None and time.monotonic() > deadline:
                return
            try:
                kind, item = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "done":
                self._done(*self.futures[item])
            else:
                self._event(item)

    def _event(self, message: dict) -> None:
        number = message["number"]
        if number in self.results:
            return  # a late message of a job that has ended
        if message["kind"] == "started":
            self.attempts[number] = self.attempts.get(number, 0) + 1
            self.started.setdefault(number, time.monotonic())
            self.emit(JobStarted(number, message["worker"], message["first_step"], message["total"],
                                 self.attempts[number]))
        elif message["kind"] == "step":
            self.emit(JobProgress(number, message["step"], message["total"], message["elapsed"], message["eta"]))

    def _done(self, planned: Planned, future) -> None:
        number, job = planned.number, planned.job
        if number in self.results:
            return
        start = self.started.get(number)
        common = dict(attempts=self.attempts.get(number, 0),
                      seconds=None if start is None else time.monotonic() - start)
        if future.status == "finished":
            outcome = future.result()
            status = outcome["status"]
            result = JobResult(number, job, status, error=outcome.get("error"), exit_code=outcome.get("exit_code"),
                               first_step=outcome.get("first_step"), worker=outcome.get("worker"),
                               threads=outcome.get("threads"), **common)
            if status == SKIPPED:
                result.seconds = None
        elif future.status == "cancelled":
            result = JobResult(number, job, CANCELLED, **common)
        else:
            result = JobResult(number, job, FAILED, error=self._task_error(future.exception()),
                               exit_code=INTERNAL_ERROR_EXIT, **common)
        self.end(result)

    def _task_error(self, error: BaseException) -> str:
        from distributed import KilledWorker

        if isinstance(error, KilledWorker):
            return ("its worker died each time it ran it (killed, or out of memory); Dask gave up after "
                    f"{self.batch.retries + 1} attempts" if self.batch.cluster is not None else
                    "its worker died each time it ran it (killed, or out of memory); Dask gave up "
                    "(the scheduler's distributed.scheduler.allowed-failures)")
        return f"internal error, please report it: {type(error).__name__}: {one_line(error)}"

    def _cancel(self) -> None:
        """Ask every task to cancel its job, and give them CANCEL_GRACE seconds to write their checkpoints."""
        from distributed import Event

        Event(self.cancel_event, client=self.batch.client).set()
        try:
            self._wait(deadline=time.monotonic() + CANCEL_GRACE)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting
        left = [(planned, future) for planned, future in self.futures.values()
                if planned.number not in self.results]
        self.batch.client.cancel([future for _, future in left])
        for planned, _ in left:
            self.end(JobResult(planned.number, planned.job, CANCELLED, attempts=self.attempts.get(planned.number, 0)))

