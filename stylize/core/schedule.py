"""The coarse-to-fine schedule: how many levels, and how many iterations each.

Most of a transfer's look (large strokes, colour layout) is settled at low
resolution, where an iteration costs a fraction of a full-size one; the
finest level then refines detail. These two functions decide that split.
"""
from __future__ import annotations

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
    """Iterations per level, halving from coarse to fine (4:2:1 for three levels).

    A coarse iteration costs a quarter of the next level's, so most of the
    style is built where pixels are cheap; the finest level refines detail.
    """
    shares = [2.0 ** (levels - 1 - k) for k in range(levels)]
    counts = [int(total * share / sum(shares)) for share in shares]
    counts[0] += total - sum(counts)
    return counts
