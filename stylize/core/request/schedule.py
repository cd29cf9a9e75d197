"""The coarse-to-fine schedule: how many levels, at which lengths (the ladder), and how many iterations each.

Most of a transfer's look (large strokes, colour layout) is settled at low
resolution, where an iteration costs a fraction of a full-size one; the
finest level then refines detail. These functions decide that split.
"""
from __future__ import annotations

from typing import Sequence

from ..io.images import fit_long_side

Shape = tuple[int, int]

#: Smallest long side for an automatic coarse level.
MIN_SCALE_LENGTH = 128
#: ``Settings.ladder``: the steps per octave between levels' lengths. octave: each level twice the
#: last (512 -> 128, 256, 512); sqrt2: sqrt(2) times (512 -> 128, 181, 256, 362, 512, as in
#: crowsonkb's style-transfer-pytorch), smaller steps from one level's result to the next.
LADDERS = {"octave": 1, "sqrt2": 2}


def step_ratio(ladder: str = "octave") -> float:
    """How much longer each level is than the one before: 2 (octave) or sqrt(2)."""
    return 2.0 ** (1 / LADDERS[ladder])


def scale_lengths(length: int, scales: int | None, ladder: str = "octave") -> list[int]:
    """Long sides of the coarse-to-fine levels, ending at ``length``, ``step_ratio(ladder)`` apart.

    Automatic: as many levels as keep the coarsest at least MIN_SCALE_LENGTH
    (octave: 512 -> 128, 256, 512; 200 -> 200). Below that the deepest style
    layers see only a few positions and coarse results stop helping.
    """
    steps = LADDERS[ladder]
    if scales is None:  # length / 2^(k/steps) >= MIN, in integers: no rounding at the boundary
        scales = 1
        while length ** steps >= MIN_SCALE_LENGTH ** steps * 2 ** scales:
            scales += 1
    return [max(1, round(length / 2 ** (k / steps))) for k in reversed(range(scales))]


def split_iterations(total: int, levels: int, ratio: float = 2.0) -> list[int]:
    """Iterations per level, coarse first: each level ``ratio`` (the ladder's step) times fewer than the
    one before, so a level's share falls as its length grows, and the finest as many as the one
    before it (octave, 2:1:1 for three levels: 320 -> 160, 80, 80; 1:1 for two; sqrt2 from 512 px:
    320 -> 113, 77, 54, 38, 38).

    Coarse levels settle the layout and the large strokes where an iteration is cheap, but the
    picture is made at full size, and every score still improves at the end of the finest level.
    Chosen by bench/quality.py (bench/README.md, "Figures behind the constants").
    """
    if levels <= 1:
        return [total] * levels
    shares = [ratio ** (levels - 2 - k) for k in range(levels - 1)] + [1.0]
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts


def sizes_at(length: int, content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
             style_scale: float) -> tuple[Shape, tuple[Shape, ...]]:
    """(output shape, style shapes) when the output's long side is ``length``: the one rule for both."""
    style_length = max(1, round(length * style_scale))
    return (fit_long_side(tuple(content_shape[:2]), length),
            tuple(fit_long_side(tuple(s[:2]), style_length) for s in style_shapes))
