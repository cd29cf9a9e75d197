"""What a running batch tells its driver, and what it returns: one ``JobResult`` per job.

Events arrive on the thread that called ``Batch.run`` (the CLI's progress
line, a notebook's widget), in this order for each job::

    JobStarted        (again for each retry after its worker died: attempt 2, 3 ...)
        JobProgress ...
    JobEnded          (exactly one, last; also for jobs skipped or refused before running)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .jobs import BatchJob

#: Statuses of a job's result.
DONE, SKIPPED, FAILED, CANCELLED = "done", "skipped", "failed", "cancelled"


@dataclass
class JobResult:
    """How one job of a batch ended."""

    number: int
    job: BatchJob
    #: done, skipped (its output was finished before), failed or cancelled.
    status: str
    #: Wall time from its (first) start to its end on the cluster.
    seconds: float | None = None
    #: Why it failed, on one line, and the exit code ``stylize run`` would have given it.
    error: str | None = None
    exit_code: int | None = None
    #: The iteration its last attempt started from (a checkpoint's; 0: the beginning).
    first_step: int | None = None
    #: How often it was started (more than once when a worker died under it).
    attempts: int = 0
    #: The Dask worker that ran its last attempt, and the BLAS threads it ran with.
    worker: str | None = None
    threads: int | None = None

    @property
    def ok(self) -> bool:
        return self.status in (DONE, SKIPPED)

    @property
    def output(self) -> str:
        return self.job.output

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        job = self.job
        return {"job": self.number, "content": job.content, "styles": list(job.styles), "output": job.output,
                "status": self.status, "seconds": None if self.seconds is None else round(self.seconds, 3),
                "error": self.error, "exit_code": self.exit_code, "first_step": self.first_step,
                "attempts": self.attempts, "worker": self.worker, "threads": self.threads,
                "settings": job.settings.to_dict()}


@dataclass(frozen=True)
class BatchEvent:
    """Base class of a batch's events."""

    number: int


@dataclass(frozen=True)
class JobStarted(BatchEvent):
    worker: str
    #: Iterations already done (a checkpoint's) and in all.
    first_step: int
    total: int
    #: 1 for its first start; more when it was started again after its worker died.
    attempt: int


@dataclass(frozen=True)
class JobProgress(BatchEvent):
    step: int
    total: int
    #: Seconds since this attempt started, and its own expected seconds left (None until it can tell).
    elapsed: float
    eta: float | None


@dataclass(frozen=True)
class JobEnded(BatchEvent):
    result: JobResult


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``Batch.run``: running jobs were cancelled (checkpoints kept); ``results`` says what ended how."""

    def __init__(self, results: list[JobResult]):
        super().__init__("batch interrupted")
        self.results = results
