"""When has a level stopped improving? The objective's relative decrease over a window of iterations.

L-BFGS keeps lowering the objective by ever smaller amounts; past some
point the picture no longer changes visibly while each iteration costs as
much as the first. ``--tol`` ends a level there (and, at the last level,
the run), so a run takes the time its picture needs.
"""
from __future__ import annotations

from collections import deque

#: Iterations over which the decrease is measured: long enough that one
#: poor line search does not end a level.
WINDOW = 20


class Stall:
    """Feed it each iteration's objective; it answers True once the last WINDOW fell by under ``tol``."""

    def __init__(self, tol: float, window: int = WINDOW):
        self.tol = tol
        self.values: deque[float] = deque(maxlen=window + 1)

    def __call__(self, value: float) -> bool:
        self.values.append(value)
        if self.tol <= 0 or len(self.values) < self.values.maxlen:
            return False
        first = self.values[0]
        return first - value <= self.tol * abs(first)
