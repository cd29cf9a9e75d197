"""An ETA that knows a finer level costs more per iteration than a coarse one.

Each iteration is weighted by its level's expected seconds per iteration
(``Estimate.level_costs``: the FLOPs of one evaluation at the machine's
recorded rate for that level's arithmetic), else its FLOPs, else its
pixels; the seconds per unit of that weight are measured on the run itself. A plain iterations-per-second
ETA, taken during the cheap coarse levels, would promise a fraction of the
real time left.

Starting a level costs about LEVEL_START_ITERATIONS of its iterations,
whatever its length, so it is charged once per level: what a short run
(``--quality draft``: 6 iterations at 512 px) spends mostly goes there.

Before the run has measured much, its own rate is noisy,
so the machine's recorded rate (``expected_seconds``, from
``stylize.core.planning.speed``) counts as PRIOR_ITERATIONS iterations of the first
level already measured: the first ETAs are the plan's, later ones the run's.
"""
from __future__ import annotations

import time
from typing import Sequence

# The plan's own arithmetic (what a range of steps costs), re-exported: the ETA is its user.
from ..planning.plan import LEVEL_START_ITERATIONS, Plan, charged_iterations, plan_cost  # noqa: F401

#: How many first-level iterations the recorded rate weighs against the run's own.
PRIOR_ITERATIONS = 5
class Clock:
    """Elapsed seconds and expected seconds left, for a run of ``plan`` that starts at ``first_step``."""

    def __init__(self, plan: Plan, level_costs: Sequence[float | None] = (), first_step: int = 0,
                 expected_seconds: float | None = None):
        costs = list(level_costs)
        #: Cost of one iteration at each level, in arbitrary units.
        self.unit = [float(c) for c in costs] if len(costs) == len(plan.levels) and all(costs) else \
            [float(level.pixels) for level in plan.levels]
        self.plan, self.first_step = plan, first_step
        self.started = time.monotonic()
        self._mark: float | None = None  # when the last counted iteration ended
        #: Cost of the iterations done so far (a level stopped by ``tol`` skips the rest of its own).
        self.work = 0.0
        #: Iterations counted so far.
        self.iterations = 0
        #: Per level: iterations counted, the same with the level's start charged
        #: (``charged_iterations``), and the seconds up to each one's end since the one before
        #: (a level's first also carries its setup): each arithmetic's rate is recorded from them.
        self.level_iterations = [0] * len(plan.levels)
        self.level_charged = [0] * len(plan.levels)
        self.level_elapsed = [0.0] * len(plan.levels)
        #: The recorded rate as pseudo-measurements: (seconds, cost), or nothing.
        self.prior = (0.0, 0.0)
        total = self.cost(0, plan.iterations)
        if expected_seconds and total > 0:
            weight = PRIOR_ITERATIONS * self.unit[0]
            self.prior = (expected_seconds / total * weight, weight)

    def cost(self, start: int, end: int) -> float:
        """Cost of the iterations after ``start`` up to ``end`` (counted over the whole run)."""
        return plan_cost(self.plan, self.unit, start, end)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def step(self, step: int) -> float | None:
        """Count iteration ``step`` as done; return the seconds left at the rate measured so far."""
        self.work += self.cost(step - 1, step)
        self.iterations += 1
        index = next((i for i, level in enumerate(self.plan.levels) if step <= level.last_step), -1)
        now = time.monotonic()
        self.level_iterations[index] += 1
        self.level_charged[index] += charged_iterations(self.plan.levels[index], step - 1, step)
        self.level_elapsed[index] += now - (self.started if self._mark is None else self._mark)
        self._mark = now
        return self.eta(step)

    def eta(self, step: int) -> float | None:
        """Seconds left after ``step`` (None before any iteration is counted)."""
        if self.work <= 0:
            return None
        seconds, work = self.prior
        return (self.elapsed() + seconds) / (self.work + work) * self.cost(step, self.plan.iterations)
