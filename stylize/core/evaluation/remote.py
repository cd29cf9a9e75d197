"""The hook through which a tiled level's tiles run on other machines (``--scheduler``); core names no capability.

A capability registers a factory here when it is imported (``stylize.cluster``
does, and the ``stylize`` package imports it); the run plan asks the
``Remote`` it makes for the machines (to size the tiles for them) and the
level loop for the objective. Nothing registered for a run that names a
scheduler is a one-line error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from ..errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from .objective import Objective, WeightedLoss
    from ..request.settings import Settings
    from .tiling import Tiles


@dataclass(frozen=True)
class Machines:
    """The workers a level's tiles are spread over: where, and the memory each one's tiles may use (bytes;
    None: no limit said)."""

    address: str
    memory: tuple[int | None, ...]

    @property
    def count(self) -> int:
        return len(self.memory)

    @property
    def smallest(self) -> int | None:
        """The smallest worker's memory: what every tile must fit (None: no worker says one)."""
        known = [m for m in self.memory if m]
        return min(known) if known else None


class Remote(Protocol):
    """What a capability gives the plan and the level loop for one run's settings."""

    def machines(self) -> Machines:
        """The workers there are now (contacting them: a one-line error if there are none)."""

    def objective(self, backend, losses: Sequence["WeightedLoss"], content: "np.ndarray", style,
                  tiles: "Tiles", **images) -> "Objective":
        """``make_tiled_objective``'s objective, with its tiles' network passes on the machines."""


_FACTORIES: list[Callable[["Settings"], "Remote | None"]] = []


def register(factory: Callable[["Settings"], "Remote | None"]) -> None:
    """Add a capability: ``factory(settings)`` gives its ``Remote`` for a run it serves, else None."""
    if factory not in _FACTORIES:
        _FACTORIES.append(factory)


def remote_for(settings: "Settings") -> Remote | None:
    """The ``Remote`` of a run that names a scheduler; None for a run on this machine alone."""
    if not settings.scheduler:
        return None
    for factory in _FACTORIES:
        found = factory(settings)
        if found is not None:
            return found
    raise UsageError(f"--scheduler {settings.scheduler}: nothing here runs tiles on a cluster "
                     "(import stylize.cluster, which the stylize package does)")
