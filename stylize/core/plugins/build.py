"""A run's optimizer, made from its settings in this one place (the plan's memory check and the pipeline share it)."""
from __future__ import annotations

from typing import Any, Mapping, Protocol

from ..contracts import Optimizer
from .loader import load


class _Settings(Protocol):
    optimizer: str

    def options_for(self, name: str) -> Mapping[str, Any]: ...


def make_optimizer(settings: _Settings) -> Optimizer:
    """The optimizer plugin ``settings`` names, constructed with the options given for it."""
    return load("stylize.optimizers", settings.optimizer)(**settings.options_for(settings.optimizer))
