"""Named bundles of settings for common goals, so users need not know the papers.

A preset only fills in what the user left at its default: anything given on
the command line, in the environment or in a config file wins.
"""
from __future__ import annotations

from typing import Any

from ..errors import UsageError

#: Iterations of ``--quality draft`` and ``best`` (the split over levels: ``schedule.split_iterations``).
DRAFT_ITERATIONS = 24
BEST_ITERATIONS = 512

PRESETS: dict[str, dict[str, Any]] = {
    # Li et al. 2018's two steps with a colour transfer for their network: the start has the style's whole
    # colour distribution (starts/colour.py), and the affine term's closed-form smoothing makes the result
    # locally affine in the photo again. Between them the network only touches it (4 iterations, style-led):
    # every iteration measured cost the style's tone (more: worse), none made it more photo-like than the
    # smoothing itself does. -n or --quality gives the network more. bench/photoreal.py, docs/photoreal.md.
    "photo": {"losses": ("gram", "affine"), "init": "distribution", "ratio": 1e5, "scales": 1, "iterations": 4,
              "options": {"affine": {"smooth": 1e-4}}},
}


#: ``--quality``: how long to work on a picture, as a preset of the schedule. Each fills in only what
#: was left at its default (a preset's and the user's values win); "normal" is the defaults themselves.
#: Times and scores are bench/quality.py's at 512 px on this project's 2-core machine (README
#: "Quality presets"): they are why each says what it says.
QUALITIES: dict[str, dict[str, Any]] = {
    "draft": {"iterations": DRAFT_ITERATIONS},
    "normal": {},
    "best": {"iterations": BEST_ITERATIONS},
}


def quality(name: str | None) -> dict[str, Any]:
    """The settings of quality ``name`` (a copy; None: none), or a one-line error listing the qualities."""
    if name is None:
        return {}
    try:
        return dict(QUALITIES[name])
    except KeyError:
        raise UsageError(f"unknown quality {name!r}; qualities: {', '.join(QUALITIES)}") from None


def preset(name: str) -> dict[str, Any]:
    """The settings of preset ``name`` (a copy), or a one-line error listing the presets."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}") from None
