"""The coarse-to-fine schedule: how many levels, and how many iterations each.

Most of a transfer's look (large strokes, colour layout) is settled at low
resolution, where an iteration costs a fraction of a full-size one; the
finest level then refines detail. These two functions decide that split.
"""
from __future__ import annotations

from typing import Sequence

from .images import fit_long_side

Shape = tuple[int, int]

#: Smallest long side for an automatic coarse level.
MIN_SCALE_LENGTH = 128


def scale_lengths(length: int, scales: int | None) -> list[int]:
    """Long sides of the coarse-to-fine levels, ending at ``length``.

    Automatic: halve while the coarsest level stays at least MIN_SCALE_LENGTH
    (so 512 -> 128, 256, 512; 200 -> 200). Below that the deepest style layers
    see only a few positions and coarse results stop helping.
    """
    if scales is None:
        scales = 1
        while length / 2 ** scales >= MIN_SCALE_LENGTH:
            scales += 1
    return [max(1, round(length / 2 ** k)) for k in reversed(range(scales))]


def split_iterations(total: int, levels: int) -> list[int]:
    """Iterations per level, coarse first: halving from the coarsest, and the finest level as many as
    the one before it (2:1:1 for three levels: 320 -> 160, 80, 80; 1:1 for two).

    Coarse levels settle the layout and the large strokes where an iteration is cheap, but the
    picture is made at full size, and every score still improves at the end of the finest level.
    Chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    """
    if levels <= 1:
        return [total] * levels
    shares = [2.0 ** (levels - 2 - k) for k in range(levels - 1)] + [1.0]
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts


def sizes_at(length: int, content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
             style_scale: float) -> tuple[Shape, tuple[Shape, ...]]:
    """(output shape, style shapes) when the output's long side is ``length``: the one rule for both."""
    style_length = max(1, round(length * style_scale))
    return (fit_long_side(tuple(content_shape[:2]), length),
            tuple(fit_long_side(tuple(s[:2]), style_length) for s in style_shapes))
