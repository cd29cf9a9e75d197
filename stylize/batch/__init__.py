"""Many stylizations on a Dask cluster: ``stylize batch`` and ``stylize.batch(jobs, client=None)``.

    import stylize
    from stylize.batch import BatchJob

    jobs = [BatchJob.of(photo, "painting.jpg", f"out/{i}.png", iterations=200) for i, photo in enumerate(photos)]
    results = stylize.batch(jobs)                  # a LocalCluster sized to this machine
    results = stylize.batch(jobs, client=client)   # or your own distributed.Client

Each job is a ``stylize.Job`` run in a process of its own on a Dask worker
(``child``), checkpointed next to its output; a job whose worker dies is
run again by Dask and resumes from its checkpoint; a finished output is
not redone. The modules: ``jobs`` (what a job is; globs, patterns,
manifests), ``options`` (``stylize run``'s options as every job's
defaults), ``plan`` (checks, estimates, the local cluster's size),
``runner`` (the cluster and the tasks), ``worker`` and ``child`` (one job
on a worker), ``events`` and ``report`` (what a driver sees).

This package is itself callable (``stylize.batch(jobs)``), so that its
modules stay reachable as ``stylize.batch.jobs`` and so on. Dask is
imported only when a batch runs.
"""
from __future__ import annotations

import sys
import types
from typing import Callable, Sequence

from .events import BatchEvent, BatchInterrupted, JobEnded, JobProgress, JobResult, JobStarted
from .jobs import BatchJob


def batch(jobs: Sequence[BatchJob | dict], client=None, *, force: bool = False, workers: int | None = None,
          retries: int | None = None, on_event: Callable[[BatchEvent], None] | None = None) -> list[JobResult]:
    """Run ``jobs`` on Dask and return one ``JobResult`` per job, in order; a failing job fails alone.

    ``jobs`` are ``BatchJob``s or dicts of ``BatchJob.of``'s arguments
    (``content``, ``style``, ``output``, ``Settings`` fields). ``client``: a
    ``distributed.Client`` (kept open); without one a LocalCluster sized
    to this machine runs them (``workers`` to choose its size, ``retries``
    its attempts after a worker died; default 3). Finished outputs are
    skipped unless ``force``; interrupted jobs resume from their
    checkpoints. ``on_event`` receives ``JobStarted``, ``JobProgress`` and
    ``JobEnded``. Ctrl-C raises ``BatchInterrupted`` (``.results``) once
    the running jobs have written their checkpoints.
    """
    from .jobs import as_job, check_outputs
    from .plan import plan
    from .runner import RETRIES, Batch

    jobs = [as_job(job) for job in jobs]
    check_outputs(jobs)
    planned = plan(jobs, force=force)
    with Batch(planned, client=client, workers=workers, retries=RETRIES if retries is None else retries,
               force=force) as runner:
        return runner.run(on_event)


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> list[JobResult]:
        return batch(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BatchEvent", "BatchInterrupted", "BatchJob", "JobEnded", "JobProgress", "JobResult", "JobStarted",
           "batch"]
