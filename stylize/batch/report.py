"""A batch's progress, summary and JSON report, as data and text (the CLI decides where they go).

The batch's ETA comes from the plans: each running job's own ETA (its
Job's level-aware clock) once it reports one, and for the others their
plan's expected seconds, corrected by how the jobs seen so far compare
with their plans (the plan does not know the fixed costs of small images
or the machine's speed), spread over the jobs the cluster runs at once.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from stylize.core.io.files import atomic_write

from .events import (CANCELLED, DONE, FAILED, SKIPPED, BatchEvent, JobEnded, JobProgress, JobResult,
                     JobStarted)
from .plan import Planned

#: File name of the JSON report when none is given: in the outputs' common folder.
REPORT_NAME = "stylize-batch.json"


class Tracker:
    """Counts and ETA of a running batch, fed with its events."""

    def __init__(self, planned: Sequence[Planned], slots: int):
        self.planned = {p.number: p for p in planned}
        self.slots = max(1, slots)
        self.ended: dict[int, JobResult] = {}
        self.running: dict[int, JobProgress | None] = {}
        #: (seconds a job's attempt takes by its own clock, seconds its plan expected for it).
        self.observed: dict[int, tuple[float, float]] = {}
        self.first_steps: dict[int, int] = {}

    def __call__(self, event: BatchEvent) -> None:
        number = event.number
        if isinstance(event, JobEnded):
            self.ended[number] = event.result
            self.running.pop(number, None)
        elif isinstance(event, JobStarted):
            self.running[number] = None
            self.first_steps[number] = event.first_step
        elif isinstance(event, JobProgress) and number in self.running:
            self.running[number] = event
            expected = self.planned[number].seconds_after(self.first_steps.get(number, 0))
            if event.eta is not None and expected:
                self.observed[number] = (event.elapsed + event.eta, expected)

    def count(self, status: str) -> int:
        return sum(1 for result in self.ended.values() if result.status == status)

    @property
    def queued(self) -> int:
        return len(self.planned) - len(self.ended) - len(self.running)

    def calibration(self) -> float:
        """Seconds a job really takes per second its plan expects (1 until a job has told)."""
        if not self.observed:
            return 1.0
        return sum(real for real, _ in self.observed.values()) / sum(plan for _, plan in self.observed.values())

    def eta(self) -> float | None:
        """Seconds until the whole batch has ended (None when a job's cost is unknown)."""
        scale, left, longest = self.calibration(), 0.0, 0.0
        for number, planned in self.planned.items():
            if number in self.ended:
                continue
            progress = self.running.get(number)
            if progress is not None and progress.eta is not None:
                seconds = progress.eta
            else:
                expected = planned.seconds_after(self.first_steps.get(number, planned.first_step))
                if expected is None:
                    return None
                seconds = expected * scale
            left += seconds
            if number in self.running:
                longest = max(longest, seconds)
        return max(longest, left / self.slots)


def summary_rows(results: Sequence[JobResult]) -> list[tuple[str, ...]]:
    """(job, status, seconds, output or error) for the summary table."""
    rows = []
    for result in results:
        status = result.status
        if status == DONE and result.first_step:
            status = f"done (resumed at {result.first_step})"
        if result.attempts > 1:
            status += f", {result.attempts} attempts"
        seconds = "" if result.seconds is None else f"{result.seconds:.0f}"
        where = result.error if result.status == FAILED else result.output
        rows.append((f"{result.number} {result.job.name}", status, seconds, where))
    return rows


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is left as long as it is."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]

    def line(row) -> str:
        return "  ".join([*(str(cell).ljust(width) for cell, width in zip(row, widths)), str(row[-1])]).rstrip()

    return "\n".join([line(header), *(line(row) for row in rows)])


def totals(results: Sequence[JobResult]) -> dict[str, int]:
    return {status: sum(1 for r in results if r.status == status) for status in (DONE, SKIPPED, FAILED, CANCELLED)}


def report_path(results: Sequence[JobResult]) -> Path:
    """The default report: in the folder that holds every output."""
    folders = [os.path.dirname(result.output) for result in results]
    return Path(os.path.commonpath(folders) if folders else ".") / REPORT_NAME


def write_report(path: str | os.PathLike, results: Sequence[JobResult], *, seconds: float,
                 cluster: dict[str, Any] | None = None, interrupted: bool = False) -> Path:
    """The JSON report, atomically: every job's outcome, the totals and the cluster."""
    body = {"version": 2, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(seconds, 3),
            "interrupted": interrupted, "totals": totals(results), "cluster": cluster or {},
            "jobs": [result.as_dict() for result in results]}
    with atomic_write(path) as f:
        f.write((json.dumps(body, indent=2) + "\n").encode())
    return Path(path)
