"""The bytes one evaluation sends to and receives from the cluster, counted where the protocol sends them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def payload_bytes(value: Any) -> int:
    """The array bytes in ``value`` (arrays, and mappings/sequences of them): what a message carries,
    without Dask's framing (a few hundred bytes per task)."""
    if isinstance(value, (np.ndarray, np.generic)):  # arrays and numpy scalars (a tile's sums of squares)
        return value.nbytes
    if isinstance(value, dict):
        return sum(payload_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(v) for v in value)
    return 0


@dataclass
class Traffic:
    """Bytes by kind of message, summed over the evaluations since ``reset``; ``evaluations`` counts them."""

    sent: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    evaluations: int = 0

    def send(self, kind: str, value: Any, copies: int = 1) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + copies * payload_bytes(value)

    def receive(self, kind: str, value: Any) -> None:
        self.received[kind] = self.received.get(kind, 0) + payload_bytes(value)

    def per_evaluation(self) -> dict[str, float]:
        """Each kind's bytes per evaluation, sent ("out: ...") and received ("in: ...")."""
        n = max(self.evaluations, 1)
        return {**{f"out: {k}": v / n for k, v in self.sent.items()},
                **{f"in: {k}": v / n for k, v in self.received.items()}}

    def reset(self) -> None:
        self.sent, self.received, self.evaluations = {}, {}, 0
