"""L-BFGS: scipy's L-BFGS-B (the optimizer of Gatys et al. and of the reference tool), or its float32 kin where only that fits."""
from __future__ import annotations

import itertools

import numpy as np
import scipy.optimize

from stylize.core import Callback, Objective, Optimizer, Option, StepResult, UsageError

from . import lbfgs32

#: Bytes scipy's L-BFGS-B and this wrapper allocate per optimized variable at
#: their peak, besides the ``history`` pairs (2 x 8 bytes each): the rest of
#: scipy's workspace (5 float64 + 3 int32), its float64 bounds, x and g, its
#: transient conversion of the bounds at start-up, the list of shared bound
#: pairs and our float32/float64 buffers. With 10 pairs that is 320 bytes per
#: variable, counted from what is allocated, not what is resident: scipy
#: touches its workspace only in part and the bounds conversion is gone before
#: the network's diffs are allocated, so the run's estimate errs on the safe
#: side.
#: Measured against tracemalloc and the resident peak: bench/README.md,
#: "Where the memory goes".
BYTES_PER_VARIABLE = 160
#: ``precision`` values: ``auto`` lets the run plan choose float32 where only that fits the memory limit.
PRECISIONS = ("auto", "float64", "float32")


class LBFGS(Optimizer):
    """Bounded L-BFGS: pixels stay inside the backend's valid input range.

    scipy works in float64; the objective and everything around it stay
    float32, and the conversion happens only at this boundary, into buffers
    allocated once per run (the objective must not keep the array it is
    given). Its memory is ``memory_bytes(n)`` for n variables.

    ``precision=float32`` runs ``lbfgs32`` instead: the same method kept in
    float32, under a third of the memory, for print sizes where scipy's
    float64 workspace does not fit. ``auto`` (the default) is float64 unless
    the run plan (``stylize.core.planning.plan.complete``) finds that only float32 fits.
    """

    options = (Option("history", int, 10, "Correction pairs kept: more remember more curvature, "
                                          "each costs two copies of the image (float64, or float32)."),
               Option("precision", str, "auto", "Where the history and the workspace live. float64: scipy's "
                      "L-BFGS-B, 320 bytes per pixel and channel with 10 pairs; float32: stylize's own "
                      "bounded L-BFGS, 100 bytes; auto: float64 wherever the run fits the memory limit with it, "
                      "float32 where only that fits (the plan line says so).", choices=PRECISIONS),
               Option("carry", bool, False, "float32 only: start each finer scale with the last one's curvature "
                      "scale (s.y / y.y, times the pixel ratio) instead of a unit first step and its line search; "
                      "scipy's float64 L-BFGS-B takes no starting scale, so nothing is carried there."))

    def __init__(self, history: int = 10, precision: str = "auto", carry: bool = False, **options):
        super().__init__(**options)
        self.history, self.carry = history, bool(carry)
        #: The last float32 minimize's curvature scale and size, for the next level (``carry_over``).
        self._carried: dict | None = None
        if precision not in PRECISIONS:
            raise UsageError(f"lbfgs.precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.precision = precision

    def memory_bytes(self, size: int, iterations: int | None = None) -> int:
        """Bytes this optimizer holds for ``size`` variables (history pairs dominate); ``auto`` counts float64.

        float32 makes one pair per iteration, so a run of fewer ``iterations`` than ``history`` holds
        less; scipy allocates its whole workspace at the start, which is what is counted for float64.
        """
        if self.precision == "float32":
            return lbfgs32.memory_bytes(size, self.history, iterations)
        return size * (2 * self.history * 8 + BYTES_PER_VARIABLE)

    def smaller(self) -> tuple[Optimizer, str] | None:
        """With ``precision=auto``: the float32 variant, for the plan to take where float64 does not fit."""
        if self.precision != "auto":
            return None
        return LBFGS(history=self.history, precision="float32", carry=self.carry), "L-BFGS history in float32"

    def carry_over(self) -> dict | None:
        """With ``carry``, after a float32 run: its last curvature scale and its size (taken once).

        The history pairs themselves are not carried: they are differences of
        iterates and gradients of the coarser level's objective (other targets,
        other weights per pixel), not secant pairs of the next one; only their
        scale, how far x moves per unit of gradient, transfers, once rescaled.
        """
        carried, self._carried = self._carried, None
        return carried

    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback, carried: dict | None = None) -> np.ndarray:
        """``carried``: a coarser float32 level's ``carry_over()``; its curvature scale grows with the pixel
        count here (the content term's gradient per pixel falls as the area grows; the first line search
        corrects the rest)."""
        if self.precision == "float32":
            scale = None if carried is None else carried["scale"] * x0.size / carried["size"]
            info: dict = {}
            x = lbfgs32.minimize(objective, x0, bounds, iterations, callback, self.history, scale=scale, info=info)
            if self.carry and info.get("scale"):
                self._carried = {"scale": info["scale"], "size": x0.size}
            return x
        shape = x0.shape
        x32 = np.empty(shape, np.float32)  # the objective's input, refilled per evaluation
        g64 = np.empty(x0.size, np.float64)  # the gradient handed to scipy, refilled likewise
        best_x = np.array(x0, dtype=np.float32)
        best = {"value": np.inf}

        def fun(v64: np.ndarray) -> tuple[float, np.ndarray]:
            np.copyto(x32, v64.reshape(shape), casting="same_kind")
            value, grad = objective(x32)
            if value < best["value"]:
                best["value"] = value
                np.copyto(best_x, x32)
            np.copyto(g64, grad.reshape(-1))
            return value, g64

        step = 0

        def on_iteration(intermediate_result: scipy.optimize.OptimizeResult) -> None:
            nonlocal step
            step += 1
            x = intermediate_result.x.astype(np.float32).reshape(shape)
            callback(StepResult(step=step, value=float(intermediate_result.fun), x=x))

        scipy.optimize.fmin_l_bfgs_b(
            fun, x0.astype(np.float64).ravel(), bounds=_bound_pairs(*bounds, shape=shape),
            m=self.history, factr=0.0, pgtol=0.0, maxiter=iterations, maxfun=2 * iterations + 20,
            callback=on_iteration,
        )
        return best_x


def _bound_pairs(lower: np.ndarray, upper: np.ndarray, shape) -> list[tuple[float, float]]:
    """scipy's per-variable ``(low, high)`` list, built from a few shared tuples.

    ``scipy.optimize.minimize`` turns a ``Bounds`` object into a list of n
    fresh tuples of fresh floats, about 130 bytes per variable held for the
    whole run (400 MB at 1024x1024 px). Backend bounds are constant over long
    runs of pixels (one pair per channel), so this list repeats one tuple per
    run: 8 bytes per variable, built at C speed.
    """
    lower = np.broadcast_to(lower, shape).reshape(-1)
    upper = np.broadcast_to(upper, shape).reshape(-1)
    changes = np.flatnonzero((lower[1:] != lower[:-1]) | (upper[1:] != upper[:-1])) + 1
    starts = [0, *changes.tolist(), lower.size]
    shared: dict[tuple[float, float], tuple[float, float]] = {}
    pairs: list[tuple[float, float]] = []
    for start, end in zip(starts[:-1], starts[1:]):
        pair = (float(lower[start]), float(upper[start]))
        pairs.extend(itertools.repeat(shared.setdefault(pair, pair), end - start))
    return pairs
