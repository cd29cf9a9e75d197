"""L-BFGS-B from scipy, the optimizer of Gatys et al. and of the reference tool."""
from __future__ import annotations

import numpy as np
import scipy.optimize

from stylize.core import Callback, Objective, Optimizer, StepResult


class LBFGS(Optimizer):
    """Bounded L-BFGS: pixels stay inside the backend's valid input range.

    scipy works in float64; the objective and everything around it stay
    float32, and the conversion happens only at this boundary.
    """

    def __init__(self, history: int = 10, **options):
        super().__init__(**options)
        self.history = history

    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback) -> np.ndarray:
        shape = x0.shape
        best = {"value": np.inf, "x": x0.astype(np.float32)}

        def fun(v64: np.ndarray) -> tuple[float, np.ndarray]:
            x = v64.astype(np.float32).reshape(shape)
            value, grad = objective(x)
            if value < best["value"]:
                best["value"], best["x"] = value, x
            return value, grad.astype(np.float64).ravel()

        step = 0

        def on_iteration(intermediate_result: scipy.optimize.OptimizeResult) -> None:
            nonlocal step
            step += 1
            x = intermediate_result.x.astype(np.float32).reshape(shape)
            callback(StepResult(step=step, value=float(intermediate_result.fun), x=x))

        lower, upper = (np.broadcast_to(b, shape).ravel() for b in bounds)
        scipy.optimize.minimize(
            fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
            bounds=scipy.optimize.Bounds(lower, upper), callback=on_iteration,
            options={"maxiter": iterations, "maxfun": 2 * iterations + 20, "maxcor": self.history,
                     "ftol": 0.0, "gtol": 0.0},
        )
        return best["x"]
