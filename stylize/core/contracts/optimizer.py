"""The Optimizer contract: minimize an objective over a flat vector, reporting each step as a StepResult."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np

from .options import Option


@dataclass
class StepResult:
    """What an optimizer reports after each iteration (one object, so it can grow)."""

    step: int
    value: float
    x: np.ndarray
    #: Filled in by the pipeline: the coarse-to-fine level (0 = coarsest) and their count.
    level: int = 0
    levels: int = 1
    #: Filled in by the pipeline: the level stops after this iteration, its objective having
    #: stopped improving (``Settings.tol``).
    converged: bool = False
    #: Filled in by the pipeline: the current image, computed only when asked for.
    to_image: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    #: Filled in by the pipeline: the image the optimizer works on (``to_image`` may
    #: post-process it, e.g. put the content's colours back); what a resume starts from.
    to_state: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self.to_image is None:
            raise AttributeError("this result carries no image conversion")
        return self.to_image(self.x)

    @property
    def state(self) -> np.ndarray:
        """The working image to resume from (``stylize.core.run.levels.Start``), before any post-processing."""
        return (self.to_state or self.to_image)(self.x)


#: An objective maps a flat float32 vector to (value, gradient of same shape).
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
#: A callback receives one StepResult; raising StopIteration ends the run.
Callback = Callable[[StepResult], None]


class Optimizer(abc.ABC):
    """Minimizes an objective over a flat vector within bounds."""

    #: The keyword options the constructor takes (``--set NAME.KEY=VALUE``);
    #: None: not declared, options are passed on unchecked.
    options: ClassVar[Sequence[Option] | None] = None

    def __init__(self, **options):
        """Accept and ignore options meant for other optimizers."""

    def memory_bytes(self, size: int, iterations: int | None = None) -> int:
        """Bytes of state this optimizer holds for ``size`` variables (0: negligible or unknown).

        ``iterations``, where given, is the most a run will take: state that grows with them
        (the float32 L-BFGS history) may count less. Optional to accept (``memory.optimizer_bytes``).
        """
        return 0

    def smaller(self) -> "tuple[Optimizer, str] | None":
        """A variant of this optimizer that holds less state, and what the plan line says of it
        (``"L-BFGS history in float32"``): the run plan takes it for a level where this one does
        not fit the memory limit. None (the default): there is none."""
        return None

    def carry_over(self) -> object | None:
        """What the last ``minimize`` leaves that the next, finer level may start from (Adam's moments,
        L-BFGS's step scale), taken once; None (the default): every level starts afresh.

        Optional: an optimizer that returns something here must accept it back as
        ``minimize(..., carried=state)`` at the next level (same optimizer class), and fit it to
        the new ``x0``'s shape there. Others are never passed ``carried``.
        """
        return None

    @abc.abstractmethod
    def minimize(self, objective: Objective, x0: np.ndarray, bounds: tuple[np.ndarray, np.ndarray],
                 iterations: int, callback: Callback) -> np.ndarray:
        """Return the best vector found after at most ``iterations`` steps.

        Call ``callback`` once per iteration; stop early on StopIteration.
        """
