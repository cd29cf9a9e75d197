"""The tile grid of exact tiled evaluation: cores that partition the image, and the halo each tile needs.

An image too large for the network's activations is evaluated a tile at a
time. Each tile owns a *core* (its rectangle of a partition of the image);
the network is fed the core plus a *halo* of surrounding pixels, at least
the receptive-field radius of the deepest layer read, so that the features
of the core's positions are exactly the whole image's. Core edges and tile
origins are multiples of the network's total stride (``Tiling.stride``), so
every layer's feature grid of a tile lines up with the whole image's. Where
the image ends the halo ends too: the network pads there exactly as it does
on the whole image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..contracts import Tiling, Window
from ..errors import UsageError


@dataclass(frozen=True)
class Tile:
    """One tile: its core and the span of input pixels it is fed (core plus halo), as (rows, cols) slices."""

    core: tuple[slice, slice]
    span: tuple[slice, slice]

    @property
    def span_shape(self) -> tuple[int, int]:
        return tuple(s.stop - s.start for s in self.span)


@dataclass(frozen=True)
class LayerWindow:
    """A tile's core at one layer: where it lies in the whole grid (``window``) and in the tile's own grid."""

    window: Window
    local: tuple[slice, slice]


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one image: core edges along each axis (``rows``, ``cols``: 0 < ... < end) and the halo."""

    shape: tuple[int, int]
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    halo: int
    tiling: Tiling

    @property
    def counts(self) -> tuple[int, int]:
        """Tiles along (rows, columns)."""
        return len(self.rows) - 1, len(self.cols) - 1

    def tiles(self) -> list[Tile]:
        return [Tile((slice(r0, r1), slice(c0, c1)),
                     (self._span(r0, r1, self.shape[0]), self._span(c0, c1, self.shape[1])))
                for r0, r1 in zip(self.rows, self.rows[1:]) for c0, c1 in zip(self.cols, self.cols[1:])]

    def _span(self, start: int, stop: int, end: int) -> slice:
        return slice(max(0, start - self.halo), min(end, stop + self.halo))

    @property
    def largest(self) -> tuple[int, int]:
        """The largest span (h, w) a tile feeds the network: what its memory follows."""
        spans = [tile.span_shape for tile in self.tiles()]
        return max(h for h, _ in spans), max(w for _, w in spans)

    def pixels(self) -> int:
        """Input pixels fed to the network over all tiles (halos counted): what its time follows."""
        return sum(h * w for h, w in (tile.span_shape for tile in self.tiles()))

    def windows(self, tile: Tile, grids: Mapping[str, tuple[int, int]]) -> dict[str, LayerWindow]:
        """The core of ``tile`` at each layer, given the whole image's grid shapes (``Tiling.grid``)."""
        out = {}
        for layer, (gh, gw) in grids.items():
            step = self.tiling.strides[layer]
            rows, local_rows = _axis(tile.core[0], tile.span[0], step, gh, self.shape[0])
            cols, local_cols = _axis(tile.core[1], tile.span[1], step, gw, self.shape[1])
            out[layer] = LayerWindow(Window(rows, cols, (gh, gw)), (local_rows, local_cols))
        return out

    def describe(self) -> str:
        """``tiled 3x2, 512x512 px tiles (80 px halo)`` (the core size of the first tile)."""
        rows, cols = self.counts
        return (f"tiled {cols}x{rows}, {self.cols[1] - self.cols[0]}x{self.rows[1] - self.rows[0]} px tiles "
                f"({self.halo} px halo)")


def _axis(core: slice, span: slice, step: int, grid: int, end: int) -> tuple[slice, slice]:
    """One axis of a layer window: the core's positions in the whole grid and in the tile's grid."""
    first = min(core.start // step, grid)
    last = grid if core.stop >= end else min(core.stop // step, grid)
    offset = span.start // step
    return slice(first, last), slice(first - offset, last - offset)


@dataclass(frozen=True)
class Tiles:
    """A tiled evaluation as the run plan chooses it: cores at most ``core`` (h, w) pixels, and the halo.

    The same choice makes the grid of every image of a level (the output and
    each style image, whatever its size): ``grid(shape)``.
    """

    core: tuple[int, int]
    halo: int
    tiling: Tiling

    def grid(self, shape: Sequence[int]) -> TileGrid:
        h, w = int(shape[0]), int(shape[1])
        stride = self.tiling.stride
        return TileGrid((h, w), edges(h, math.ceil(h / self.core[0]), stride),
                        edges(w, math.ceil(w / self.core[1]), stride), self.halo, self.tiling)


def edges(length: int, parts: int, stride: int) -> tuple[int, ...]:
    """Core edges splitting ``length`` into about ``parts`` equal cores whose inner edges are multiples of ``stride``."""
    inner = sorted({round(k * length / parts / stride) * stride for k in range(1, parts)} - {0})
    return (0, *[e for e in inner if e < length], length)


def halo_for(tiling: Tiling) -> int:
    """The smallest exact halo: the receptive-field radius rounded up to a multiple of the stride
    (so that every tile starts on the grid)."""
    return -(-tiling.radius // tiling.stride) * tiling.stride


def make_tiles(tiling: Tiling, core: int | Sequence[int], halo: int | None = None) -> Tiles:
    """``Tiles`` with cores of at most ``core`` px (rounded down to the stride); refuse an inexact halo.

    A halo smaller than the receptive-field radius would change the
    features near every core's edge (the result would no longer be the
    whole image's), and one off the stride would misalign the tiles' grids.
    """
    stride = tiling.stride
    halo = halo_for(tiling) if halo is None else int(halo)
    if halo < tiling.radius:
        raise UsageError(f"a {halo} px tile halo is smaller than the network's receptive-field radius "
                         f"({tiling.radius} px): tiles would not give the whole image's result; "
                         f"use at least {halo_for(tiling)}")
    if halo % stride:
        raise UsageError(f"a {halo} px tile halo is not a multiple of the network's stride ({stride} px)")
    sides = (core, core) if isinstance(core, int) else tuple(core)
    if min(sides) < stride:
        raise UsageError(f"--tile-size {min(sides)}: tiles must be at least the network's stride, {stride} px")
    return Tiles((sides[0] // stride * stride, sides[1] // stride * stride), halo, tiling)
