"""Bounded L-BFGS in float32: the history that fits when scipy's float64 one does not.

scipy's L-BFGS-B (``lbfgs.py``) keeps its correction pairs and workspace in
float64: 320 bytes per variable with 10 pairs, more at print sizes than a
tiled evaluation of the network. This one
keeps everything in float32, the objective's own precision: ``2 m + 5``
image-sized float32 arrays (m pairs, the iterate, its gradient, the
direction, the best point, the snapshot handed to the callback), 100 bytes
per variable with 10 pairs. ``lbfgs.LBFGS`` runs it with
``precision=float32``, or when the run plan finds that only it fits.

What it does instead of scipy's L-BFGS-B, and why:

- **Bounds by projection.** L-BFGS-B finds the generalized Cauchy point and
  minimizes its model over the free variables. Here a variable at a bound
  whose gradient pushes it outward is held (its gradient and step are
  zero, the free-variable set of L-BFGS-B), the two-loop recursion
  (Nocedal & Wright, Algorithm 7.4) runs on the others, and every trial
  point is projected onto the box. For images, where few pixels sit at a
  bound, the two differ little; the projection costs no memory.
- **Line search.** scipy uses Moré and Thuente's (strong Wolfe); this one
  asks the weak Wolfe conditions along the projected path: sufficient
  decrease on the projected step, and a slope at the new point no steeper
  than 0.9 times the first, which keeps ``s.y > 0`` so the history stays
  positive definite. Too long: safeguarded quadratic interpolation inside
  the bracket; too short: secant extrapolation (2x to 10x). The first
  step of a run (no history yet) moves the largest component by one unit
  of x, then extrapolates, as scipy's first step (a unit-norm one) does.
- **float32 throughout.** The vectors are float32; dot products are summed
  in float64 over chunks of 64 Ki values (a float32 sum over 30 M values
  would lose digits), and updates are in place (BLAS ``saxpy``, ``out=``),
  so no image-sized temporary is ever made, float64 or other.
- **Stopping.** As the scipy path runs (``factr=0``, ``pgtol=0``): after
  ``iterations``, after ``2 * iterations + 20`` evaluations, when the
  projected gradient is zero, or when no step decreases the objective even
  from a steepest-descent restart.

The best point evaluated is returned (accepted points decrease the
objective; a rejected trial can still be the lowest). The objective gets a
view of one of these buffers: it must not keep it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import saxpy

from stylize.core import Callback, Objective, StepResult

#: Image-sized float32 arrays held besides the ``2 * history`` pair arrays (one pair's pair of
#: arrays holds the trial point and its gradient during the line search): the iterate, its
#: gradient, the direction, the best point and the snapshot the callback receives.
ARRAYS = 5
#: Values per chunk of the float64-summed dot products and of the masks (256 KiB of float32).
CHUNK = 1 << 16
#: Weak Wolfe constants: sufficient decrease, curvature (scipy's L-BFGS-B: 1e-3 and 0.9).
C1, C2 = 1e-4, 0.9
#: Evaluations one line search may take.
MAX_TRIALS = 20


def memory_bytes(size: int, history: int, iterations: int | None = None) -> int:
    """Bytes held for ``size`` variables with ``history`` pairs, all float32; pairs are made one per
    iteration (the last one's holding its trial point), so a run of ``iterations`` holds at most that many."""
    pairs = history if iterations is None else max(1, min(history, iterations))
    return size * 4 * (2 * pairs + ARRAYS)


def minimize(objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray], iterations: int,
             callback: Callback, history: int = 10, scale: float | None = None, info: dict | None = None) -> np.ndarray:
    """Minimize ``objective`` from ``x0`` inside ``bounds``; return the best point evaluated (float32).

    ``scale``: the inverse Hessian's scale for the first step (no history yet), tried at length 1,
    instead of a step that moves the largest component by one unit; ``info["scale"]`` receives the
    newest pair's ``s.y / y.y`` at the end (what a next level may start with).
    """
    shape, n = x0.shape, x0.size
    lower, upper = (np.ascontiguousarray(np.broadcast_to(np.asarray(b, np.float32), shape)).reshape(-1)
                    for b in bounds)
    x = np.empty(n, np.float32)
    np.clip(np.asarray(x0, np.float32).reshape(-1), lower, upper, out=x)  # a fresh array: x0 is left alone
    value, grad = objective(x.reshape(shape))
    value = float(value)
    g = np.array(grad, np.float32).reshape(-1)
    direction = np.empty(n, np.float32)
    search = _Search(objective, shape, lower, upper, best=x.copy(), best_value=value)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (s, y, 1 / s.y), oldest first
    spare: list[np.ndarray] = []  # arrays of dropped pairs, for the next trials
    evaluations, budget = 1, 2 * iterations + 20
    step = 0
    while step < iterations and evaluations < budget:
        np.copyto(direction, g)
        _hold_fixed(direction, x, g, lower, upper)
        if not np.any(direction):
            break  # every variable is held at a bound: a constrained minimum
        _two_loop(direction, pairs)
        np.negative(direction, out=direction)
        _hold_fixed(direction, x, g, lower, upper)
        slope = _dot(g, direction)
        if not slope < 0:  # not a descent direction (float32 rounding in an old history): restart
            _drop(pairs, spare)
            np.negative(g, out=direction)
            _hold_fixed(direction, x, g, lower, upper)
            slope = _dot(g, direction)
        if len(pairs) == history:
            trial, trial_grad, _ = pairs.pop(0)  # the oldest pair is not needed once the direction is made
        elif spare:
            trial, trial_grad = spare.pop(), spare.pop()
        else:
            trial, trial_grad = np.empty(n, np.float32), np.empty(n, np.float32)
        if not pairs and step == 0 and scale:  # a carried scale: the quasi-Newton step, at length 1
            direction *= np.float32(scale)
            slope *= scale
            first = 1.0
        else:
            first = 1.0 if pairs else 1.0 / float(np.max(np.abs(direction)))
        found = search(x, g, direction, value, slope, first, trial, budget - evaluations)
        evaluations += search.evaluations
        if found is None:
            spare += [trial, trial_grad]
            if not pairs:
                break  # not even steepest descent decreases the objective
            _drop(pairs, spare)  # restart from steepest descent
            continue
        value, new_grad = found
        # s = trial - x goes into x's array while trial's array becomes the iterate; y = g_new - g.
        np.subtract(trial, x, out=x)
        x, s = trial, x
        np.subtract(new_grad, g, out=trial_grad)
        np.copyto(g, new_grad)
        sy = _dot(s, trial_grad)
        if sy > np.finfo(np.float32).eps * _dot(trial_grad, trial_grad):
            pairs.append((s, trial_grad, 1.0 / sy))
        else:
            spare += [s, trial_grad]  # no curvature seen along s: the pair would spoil the history
        step += 1
        try:
            callback(StepResult(step=step, value=value, x=x.reshape(shape).copy()))
        except StopIteration:
            break
    if info is not None and pairs:
        _, newest, rho = pairs[-1]
        info["scale"] = 1.0 / (rho * _dot(newest, newest))
    return search.best.reshape(shape)


def _drop(pairs: list, spare: list) -> None:
    """Forget the history (a restart from steepest descent), keeping its arrays for reuse."""
    spare += [a for s, y, _ in pairs for a in (s, y)]
    pairs.clear()


class _Search:
    """The weak Wolfe line search along the projected path ``P(x + t d)``.

    A call returns ``(value, gradient)`` at the accepted point, left in
    ``trial``, or None when no trial decreased the objective enough, and
    counts the evaluations it spent in ``evaluations``. Every point
    evaluated that is lower than any before is copied into ``best``.
    """

    def __init__(self, objective: Objective, shape, lower: np.ndarray, upper: np.ndarray, best: np.ndarray,
                 best_value: float):
        self.objective, self.shape, self.lower, self.upper = objective, shape, lower, upper
        self.best, self.best_value, self.evaluations = best, best_value, 0

    def __call__(self, x, g, d, f0: float, slope0: float, t: float, trial: np.ndarray, budget: int):
        self.evaluations = 0
        trials = min(MAX_TRIALS, budget)
        low, f_low, slope_low = 0.0, f0, slope0  # the longest step known to decrease enough
        high, f_high = math.inf, math.nan  # the shortest step known to be too long
        while self.evaluations < trials:
            value, grad = self._evaluate(x, d, t, trial)
            decrease, slope = _slopes(g, grad, x, trial, d, self.lower, self.upper)
            if not (math.isfinite(value) and value <= f_low and value < f0 + C1 * min(decrease, 0.0)):
                high, f_high = t, value
            elif slope >= C2 * slope0 or self.evaluations == trials:
                return value, grad  # the curvature condition, or out of trials with a sufficient decrease
            else:  # decreases enough but still falls steeply: a longer step
                previous, slope_previous = low, slope_low
                low, f_low, slope_low = t, value, slope
                if math.isinf(high):
                    t = _extrapolate(previous, slope_previous, t, slope)
                    continue
            t = _interpolate(low, f_low, slope_low, high, f_high)
        if low > 0 and self.evaluations < budget:  # a sufficient decrease was seen: go back to it
            return self._evaluate(x, d, low, trial)
        return None

    def _evaluate(self, x, d, t, trial):
        np.copyto(trial, x)
        saxpy(d, trial, a=t)  # in place: trial += t d
        np.clip(trial, self.lower, self.upper, out=trial)
        value, grad = self.objective(trial.reshape(self.shape))
        value = float(value)
        self.evaluations += 1
        if value < self.best_value:
            self.best_value = value
            np.copyto(self.best, trial)
        return value, np.asarray(grad, np.float32).reshape(-1)


def _extrapolate(t0: float, slope0: float, t1: float, slope1: float) -> float:
    """The next, longer step: where the slope's secant through two points reaches zero, 2x to 10x ``t1``."""
    guess = t1 - slope1 * (t1 - t0) / (slope1 - slope0) if slope1 > slope0 else math.inf
    return min(max(guess, 2 * t1), 10 * t1)


def _interpolate(low: float, f_low: float, slope_low: float, high: float, f_high: float) -> float:
    """A step inside (low, high): the minimum of the quadratic through f(low), f'(low), f(high),
    kept at least a tenth of the bracket away from either end; the middle if that fails."""
    width = high - low
    curvature = f_high - f_low - slope_low * width
    guess = low - slope_low * width * width / (2 * curvature) if curvature > 0 else math.nan
    if not math.isfinite(guess):
        return low + width / 2
    return min(max(guess, low + 0.1 * width), high - 0.1 * width)


def _chunks(n: int):
    return (slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK))


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a . b`` of float32 vectors, summed in float64 over chunks (a float32 sum of 30 M terms loses digits)."""
    return math.fsum(float(np.dot(a[c], b[c])) for c in _chunks(a.size))


def _slopes(g, grad, x, trial, d, lower, upper) -> tuple[float, float]:
    """``g . (trial - x)``, the first-order decrease of the projected step, and the slope of the
    projected path at the trial point: ``grad . d`` over the components not stopped by a bound."""
    decrease = slope = 0.0
    for c in _chunks(x.size):
        decrease += float(np.dot(g[c], trial[c] - x[c]))
        moving = (trial[c] > lower[c]) & (trial[c] < upper[c])
        slope += float(np.dot(np.where(moving, grad[c], 0), d[c]))
    return decrease, slope


def _hold_fixed(v: np.ndarray, x: np.ndarray, g: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
    """Zero ``v`` where x is at a bound and the gradient pushes it out (L-BFGS-B's fixed variables)."""
    for c in _chunks(x.size):
        fixed = ((x[c] <= lower[c]) & (g[c] > 0)) | ((x[c] >= upper[c]) & (g[c] < 0))
        v[c][fixed] = 0


def _two_loop(q: np.ndarray, pairs) -> None:
    """``q <- H q`` in place: the L-BFGS inverse Hessian (Nocedal & Wright, Algorithm 7.4),
    scaled by ``s.y / y.y`` of the newest pair; the identity without pairs."""
    if not pairs:
        return
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * _dot(s, q)
        saxpy(y, q, a=-alpha)
        alphas.append(alpha)
    s, y, rho = pairs[-1]
    q *= np.float32(1.0 / (rho * _dot(y, y)))
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * _dot(y, q)
        saxpy(s, q, a=alpha - beta)
