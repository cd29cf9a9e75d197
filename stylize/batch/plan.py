"""A batch's plan, made where it is started: each job checked, planned and estimated before any is run.

Everything ``stylize.Job`` refuses without work (bad settings, an unreadable
image, sizes out of range, a checkpoint made with other options) fails that
job here, with its one-line error, and the other jobs go on. Each job's
memory and time come from its run plan and the loaded network; jobs with
the same network share one load. The local cluster is sized from them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Sequence

from stylize.core.errors import INTERNAL_ERROR_EXIT, StylizeError, UsageError, one_line
from stylize.core.run.events import Estimate
from stylize.core.request.fields import described
from stylize.core.run.job import Job
from stylize.core.planning.memory import memory_limit
from stylize.core.run.pipeline import Pipeline
from stylize.core.planning.plan import check_network_sizes

from .jobs import BatchJob

#: States of a planned job.
NEW, RESUME, FINISHED, FAILED = "new", "resume", "finished", "failed"


@dataclass
class Planned:
    """One job as planned: its state, and (unless finished or failed) its plan's size and cost."""

    number: int
    job: BatchJob
    state: str
    #: Iterations already done (a checkpoint's) and in all.
    first_step: int = 0
    iterations: int | None = None
    #: The output's (height, width).
    shape: tuple[int, int] | None = None
    estimate: Estimate | None = None
    #: Why it failed (one line) and the exit code ``stylize run`` would give it.
    error: str | None = None
    exit_code: int | None = None

    @property
    def runs(self) -> bool:
        return self.state in (NEW, RESUME)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.estimate is None else self.estimate.memory_bytes

    @property
    def seconds(self) -> float | None:
        """Expected seconds of what is left of it (the plan's estimate, less what a checkpoint holds)."""
        return self.seconds_after(self.first_step)

    def seconds_after(self, step: int) -> float | None:
        """Expected seconds of its iterations after ``step`` (None: unknown)."""
        if self.estimate is None or self.estimate.seconds is None or not self.iterations:
            return None
        return self.estimate.seconds * (1 - step / self.iterations)


def plan(jobs: Sequence[BatchJob], *, force: bool = False) -> list[Planned]:
    """Plan every job: finished ones (unless ``force``) are not even read; a failing one fails alone."""
    pipelines: dict[str, Pipeline] = {}
    planned = []
    for number, job in enumerate(jobs, 1):
        if job.finished and not force:
            planned.append(Planned(number, job, FINISHED))
            continue
        try:
            planned.append(_plan_one(number, job, force, pipelines))
        except StylizeError as e:
            planned.append(Planned(number, job, FAILED, error=_batch_hint(e, job, force), exit_code=e.exit_code))
        except Exception as e:  # a bug: that job fails with it, the others go on
            planned.append(Planned(number, job, FAILED, exit_code=INTERNAL_ERROR_EXIT,
                                   error=f"internal error, please report it: {type(e).__name__}: {one_line(e)}"))
    return planned


def _plan_one(number: int, job: BatchJob, force: bool, pipelines: dict[str, Pipeline]) -> Planned:
    run = job.job(resume=not force)
    return Planned(number, job, NEW if run.resumed is None else RESUME, first_step=run.first_step,
                   iterations=run.plan.iterations, shape=run.plan.final.shape, estimate=estimate(run, pipelines))


def estimate(run: Job, pipelines: dict[str, Pipeline]) -> Estimate:
    """``run.estimate``, loading each distinct network once for a whole batch."""
    settings = run.settings
    # Jobs whose settings differ only in fields that change neither the network nor the optimizer
    # (each field's declaration says) share one load.
    network = {name for name, (about, _) in described(type(settings)).items() if about.network}
    key = json.dumps({name: value for name, value in settings.to_dict().items() if name in network},
                     sort_keys=True, default=str)
    pipeline = pipelines.get(key)
    if pipeline is None:
        pipeline = pipelines[key] = Pipeline.load(settings, run.plan)
    check_network_sizes(run.plan, pipeline.backend.smallest_input(), settings.backend)
    return dataclasses.replace(pipeline, settings=settings, plan=run.plan).estimate()


def _batch_hint(error: StylizeError, job: BatchJob, force: bool) -> str:
    message = one_line(error)
    if isinstance(error, UsageError) and not force and job.checkpoint.exists() and "cannot resume" in message:
        message += " (stylize batch: --force starts every job over)"
    return message


# -- the local cluster -----------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Worker processes of the local cluster, and the cores (BLAS threads) each job gets."""

    workers: int
    threads: int
    #: Why, in a few words (shown with the cluster).
    reason: str
    #: Bytes each worker advertises as its ``memory`` resource (the machine's share); None: unknown.
    memory: int | None = None


def local_layout(planned: Sequence[Planned], *, cores: int | None = None, memory: int | None = None,
                 workers: int | None = None, threads: int | None = None) -> Layout:
    """As many one-job workers as the cores, the jobs and the memory allow; the cores shared out among them.

    ``workers`` and ``threads`` win (default: --workers, and the most
    threads a job asks for with --threads); ``cores`` and ``memory``
    (bytes) default to this machine's. Each worker
    runs one job at a time, so two jobs never share cores or oversubscribe
    BLAS, and together they fit in memory by their estimates; each
    advertises its share of the memory (``Layout.memory``), which a job
    larger than it cannot be given.
    """
    cores = cores or available_cores()
    threads = threads or asked_threads(planned)
    if memory is None:
        limit = memory_limit()
        memory = None if limit is None else limit[0]
    running = [p for p in planned if p.runs] or list(planned)
    need = max((p.memory_bytes for p in running if p.memory_bytes), default=None)
    if workers is not None:
        return Layout(workers, threads or max(1, cores // workers), "as asked", memory and memory // workers)
    count = max(1, min(len(running), cores // (threads or 1)))
    reason = f"{cores} cores, {len(running)} job{'s' if len(running) != 1 else ''}"
    if need and memory:
        fit = max(1, memory // need)
        if fit < count:
            count, reason = fit, f"{reason}, memory for {fit} at once"
    return Layout(count, threads or max(1, cores // count), reason, memory and memory // count)


def asked_threads(planned: Sequence[Planned]) -> int | None:
    """The most BLAS threads a job to run asks for (``--threads``, or its own in a manifest), if any does."""
    return max({p.job.settings.threads for p in planned if p.runs} - {None}, default=None)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
