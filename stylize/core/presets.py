"""Named bundles of settings for common goals, so users need not know the papers.

A preset only fills in what the user left at its default: anything given on
the command line, in the environment or in a config file wins.
"""
from __future__ import annotations

from typing import Any

from .errors import UsageError

PRESETS: dict[str, dict[str, Any]] = {
    # Luan et al. 2017 without their segmentation network: the affine term
    # keeps edges and local colour relations of the photo, content start,
    # style layers' textures kept moderate so the result stays a photograph.
    "photo": {"losses": ("gram", "affine"), "init": "content", "ratio": 1e3},
}


def preset(name: str) -> dict[str, Any]:
    """The settings of preset ``name`` (a copy), or a one-line error listing the presets."""
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}") from None
