"""What is installed: every stylize entry point and its distribution, read from metadata, nothing imported."""
from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from typing import Sequence

from .groups import GROUPS, KIND, lookalike


@dataclass(frozen=True)
class Registration:
    """One entry point of a stylize group, with the distribution that declares it."""

    group: str
    name: str
    #: ``"module:Class"``, as written in the distribution's metadata.
    value: str
    dist: str
    version: str

    @property
    def kind(self) -> str:
        return KIND.get(self.group, self.group)

    def hint(self) -> str:
        """Why a registration in a look-alike group is not loaded, and the group stylize reads."""
        return (f"{self.name!r} is registered under {self.group!r} by package {self.dist}; "
                f"stylize reads {lookalike(self.group)!r}")


def installed() -> list[Registration]:
    """Every entry point of every installed distribution, read from metadata (nothing imported).

    A distribution found twice on ``sys.path`` (an editable checkout beside
    its ``*.egg-info``) counts once, the first copy, as Python's own
    ``importlib.metadata.entry_points`` does.
    """
    seen_dists: set[str] = set()
    found = []
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or "unknown distribution"
        key = re.sub(r"[-_.]+", "-", dist_name).lower()
        if key in seen_dists:
            continue
        seen_dists.add(key)
        found.extend(Registration(ep.group, ep.name, ep.value, dist_name, dist.version or "unknown")
                     for ep in dist.entry_points)
    return found


def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """Entry points registered in ``group``, read without importing any plugin."""
    return list(importlib.metadata.entry_points(group=group))


def names(group: str) -> list[str]:
    """The plugin names registered in ``group``, sorted."""
    return sorted({ep.name for ep in entry_points(group)})


def registrations(groups: Sequence[str] = tuple(GROUPS)) -> list[Registration]:
    """Every plugin registered in ``groups``, with its distribution's name and version.

    Read from the installed distributions' metadata; no plugin is imported.
    A name that two distributions register appears once per distribution
    (``load`` refuses it). Sorted by group (in the order given), name and
    distribution.
    """
    order = {group: i for i, group in enumerate(groups)}
    found = [reg for reg in installed() if reg.group in order]
    return sorted(found, key=lambda r: (order[r.group], r.name, r.dist.lower()))


def registrants(group: str, name: str, value: str | None = None) -> list[str]:
    """Names of the installed distributions registering ``name`` in ``group``."""
    return sorted({reg.dist for reg in installed()
                   if reg.group == group and reg.name == name and value in (None, reg.value)})
