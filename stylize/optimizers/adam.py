"""Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015), projected onto the bounds."""
from __future__ import annotations

import math

import numpy as np

from stylize.core import Callback, Objective, Optimizer, Option, StepResult, UsageError

from .rescale import resize_planes


class Adam(Optimizer):
    """Adam with projection onto the pixel bounds: one objective evaluation per step.

    Each step is exactly one forward/backward (L-BFGS spends extra ones in its
    line search) and the step length is set by ``lr`` in network-input units
    (0..255 pixel values for Caffe VGG), independent of the objective's scale.

    Options (``--set adam.KEY=VALUE``):

    - ``lr`` (default 10): step size in input units; the first steps move each
      pixel by about ``lr``. Chosen by the runs in bench/README.md,
      "Adam's step size".
    - ``beta1`` (0.9), ``beta2`` (0.999), ``eps`` (1e-8): Kingma & Ba's moment
      decay rates and denominator guard.
    - ``decay`` (1.0): the step size falls geometrically over each
      ``minimize`` call, from ``lr`` at the first update to ``lr * decay`` at
      the last (so the schedule does not depend on the iteration count).
      Constant steps by default (the same runs); a decay can help long runs
      settle.
    - ``carry`` (false): a finer level starts with the coarser one's moments,
      resized to it (bilinear; ``v`` stays non-negative), and its step count,
      as crowsonkb's style-transfer-pytorch does: the first steps are not
      each pixel moved by ``lr`` along the sign of its gradient.
    - ``average`` (0, off): the decay of an exponential moving average of
      the iterate (0.99 in crowsonkb's style-transfer-pytorch). It restarts
      at each level; the level returns it (so it seeds the next level), after
      one more evaluation, unless the best iterate evaluated is lower. Adam's
      iterate hovers around a minimum at a distance set by ``lr``; the
      average settles there. Steps report the iterate and its objective.

    After every step the image is clipped into the bounds (projected
    gradient). The moments, the iterate, the best iterate and one scratch
    array are float32 and allocated once; each step hands the callback its own
    copy of the evaluated x, so a callback may keep it. The best x evaluated
    is returned (Adam's objective is not monotone), or with ``average`` the average where it is lower.
    """

    options = (
        Option("lr", float, 10.0, "Step size in network-input units (0..255 pixel values for Caffe VGG)."),
        Option("beta1", float, 0.9, "Decay rate of the gradient's running mean, in [0, 1)."),
        Option("beta2", float, 0.999, "Decay rate of the squared gradient's running mean, in [0, 1)."),
        Option("eps", float, 1e-8, "Guard added to the denominator of each step."),
        Option("decay", float, 1.0, "Step size at the last update as a fraction of lr, in (0, 1]."),
        Option("carry", bool, False, "Start each finer scale with the last one's moments, resized to it, and its "
                                     "step count (the bias correction goes on), instead of from zero."),
        Option("average", float, 0.0, "Decay of a moving average of the image (e.g. 0.99): each scale returns "
                                      "the average (unless the best image evaluated is lower), which restarts "
                                      "at each scale and seeds the next; 0: off (the best image evaluated)."),
    )

    def __init__(self, lr: float = 10.0, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 decay: float = 1.0, carry: bool = False, average: float = 0.0, **options):
        super().__init__(**options)
        values = {}
        for name, value in (("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps), ("decay", decay),
                            ("average", average)):
            try:
                values[name] = float(value)
            except (TypeError, ValueError):
                raise UsageError(f"adam: {name} must be a number, got {value!r}") from None
        self.lr, self.beta1, self.beta2 = values["lr"], values["beta1"], values["beta2"]
        self.eps, self.decay, self.average = values["eps"], values["decay"], values["average"]
        self.carry = bool(carry)
        #: What the last minimize left for the next level (``carry_over``), with ``carry``.
        self._carried: dict | None = None
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"adam: lr must be a positive number, got {lr!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise UsageError(f"adam: {name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.eps > 0:
            raise UsageError(f"adam: eps must be positive, got {eps!r}")
        if not 0 < self.decay <= 1:
            raise UsageError(f"adam: decay must be in (0, 1], got {decay!r}")
        if not 0 <= self.average < 1:
            raise UsageError(f"adam: average must be in [0, 1) (0: off), got {average!r}")

    def carry_over(self) -> dict | None:
        """With ``carry``: the last minimize's moments and step count, for the next level (taken once)."""
        carried, self._carried = self._carried, None
        return carried

    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback, carried: dict | None = None) -> np.ndarray:
        """``carried``: a coarser level's ``carry_over()``, its moments resized to ``x0``'s shape here."""
        lower, upper = (np.broadcast_to(np.asarray(b, np.float32), x0.shape) for b in bounds)
        x = np.clip(np.asarray(x0, np.float32), lower, upper)  # a fresh array: x0 is not modified
        best, best_value = x.copy(), math.inf
        m = np.zeros_like(x) if carried is None else resize_planes(carried["m"], x.shape)
        v = np.zeros_like(x) if carried is None else resize_planes(carried["v"], x.shape)
        before = 0 if carried is None else carried["step"]  # updates made at coarser levels
        averaged = None if not self.average else _Average(self.average, x)
        scratch = np.empty_like(x)
        b1, b2 = np.float32(self.beta1), np.float32(self.beta2)
        step = 0
        for step in range(1, iterations + 1):
            value, grad = objective(x)
            value = float(value)
            if value < best_value:
                best_value = value
                np.copyto(best, x)
            if averaged is not None:
                averaged.add(x)
            try:
                callback(StepResult(step=step, value=value, x=x.copy()))
            except StopIteration:
                break
            if step == iterations:
                break  # the update would never be evaluated
            grad = np.asarray(grad, np.float32).reshape(x.shape)
            # m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2, in place.
            m *= b1
            np.multiply(grad, 1 - b1, out=scratch)
            m += scratch
            v *= b2
            np.multiply(grad, grad, out=scratch)
            grad = None  # not held through the next evaluation: an image-sized array less at its peak
            scratch *= (1 - b2)
            v += scratch
            # x -= lr_t * m_hat / (sqrt(v_hat) + eps), with the bias corrections folded into lr_t.
            lr = self.lr * self.decay ** ((step - 1) / max(1, iterations - 2))
            t = before + step
            lr_t = lr * math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
            eps_t = self.eps * math.sqrt(1 - self.beta2 ** t)
            np.sqrt(v, out=scratch)
            scratch += np.float32(eps_t)
            np.divide(m, scratch, out=scratch)
            scratch *= np.float32(lr_t)
            x -= scratch
            np.clip(x, lower, upper, out=x)
        if self.carry:
            self._carried = {"m": m, "v": v, "step": before + max(0, step - 1)}
        if averaged is None:
            return best
        mean = averaged.value()  # one more evaluation: the average is kept where it is the better point
        return mean if float(objective(mean)[0]) <= best_value else best


class _Average:
    """An exponential moving average of the iterates, bias-corrected (its first value is the first iterate)."""

    def __init__(self, decay: float, like: np.ndarray):
        self.decay, self.weight = decay, 0.0
        self.sum = np.zeros_like(like)

    def add(self, x: np.ndarray) -> None:
        self.sum *= np.float32(self.decay)
        self.sum += np.float32(1 - self.decay) * x
        self.weight = self.decay * self.weight + (1 - self.decay)

    def value(self) -> np.ndarray:
        return self.sum / np.float32(self.weight)
