"""Receptive fields of convolutions and poolings, and the ``Tiling`` they give: for any backend's ``tiling()``.

Exact tiled evaluation needs, for each layer a loss reads, which input
pixels a feature position reads. Through a convolution or pooling window
that is simple arithmetic (``Reach.through``); a backend that describes its
network as such steps gets its ``Tiling`` from ``chain_tiling`` (a plain
chain, e.g. a PyTorch ``Sequential``) or ``make_tiling`` (its own walk over a
graph, as the Caffe backends' prototxt reader does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from . import Tiling


@dataclass(frozen=True)
class Reach:
    """Along one axis: position i of a layer reads input pixels ``stride * i + first`` to ``stride * i + last``."""

    stride: int = 1
    first: int = 0
    last: int = 0

    def through(self, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> "Reach":
        """The reach after a convolution or pooling window (``kernel``, ``stride``, ``pad``, ``dilation``)."""
        return Reach(self.stride * stride, self.first - self.stride * pad,
                     self.last + self.stride * (dilation * (kernel - 1) - pad))

    @property
    def radius(self) -> int:
        """Input pixels beyond a core that its features read (on the wider side)."""
        return max(-self.first, self.last - self.stride + 1, 0)


def make_tiling(rows: Mapping[str, Reach], cols: Mapping[str, Reach], layers: Sequence[str],
                grid: Callable[[Sequence[int]], Mapping[str, tuple[int, int]]],
                channels: Mapping[str, int] | None = None) -> Tiling | None:
    """The ``Tiling`` of ``layers`` from each layer's reach along rows and columns; None when a layer is
    missing or its two axes have different strides (tiles must stay square in every grid)."""
    if any(layer not in rows or layer not in cols or rows[layer].stride != cols[layer].stride for layer in layers):
        return None
    strides = {layer: rows[layer].stride for layer in layers}
    radius = max((reach[layer].radius for reach in (rows, cols) for layer in layers), default=0)
    return Tiling(stride=math.lcm(*strides.values()) if strides else 1, radius=radius, strides=strides,
                  grid=grid, channels=dict(channels or {}))


@dataclass(frozen=True)
class Step:
    """One layer of a chain that moves positions: a convolution or a pooling window (square).

    Element-wise layers (ReLU, normalization per position) need no step.
    ``ceil`` rounds the output size up, as Caffe's pooling does (PyTorch's
    ``ceil_mode``); sizes otherwise round down.
    """

    name: str
    kernel: int = 1
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    ceil: bool = False

    def size(self, side: int) -> int:
        span = side + 2 * self.pad - self.dilation * (self.kernel - 1) - 1
        return (-(-span // self.stride) if self.ceil else span // self.stride) + 1


def chain_tiling(steps: Sequence[Step], layers: Sequence[str],
                 channels: Mapping[str, int] | None = None) -> Tiling | None:
    """The ``Tiling`` of ``layers`` of a network that is the chain ``steps`` (each layer's output
    named by its step); None when a layer is not a step's."""
    reach, reaches = Reach(), {}
    for step in steps:
        reach = reaches[step.name] = reach.through(step.kernel, step.stride, step.pad, step.dilation)

    def grid(shape: Sequence[int]) -> dict[str, tuple[int, int]]:
        sides, out = [int(shape[0]), int(shape[1])], {}
        for step in steps:
            sides = [step.size(side) for side in sides]
            out[step.name] = (sides[0], sides[1])
        return {layer: out[layer] for layer in layers}

    return make_tiling(reaches, reaches, layers, grid, channels)
