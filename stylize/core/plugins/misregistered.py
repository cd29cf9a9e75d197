"""Entry points under a group that only looks like stylize's: never loaded, but found so that an author learns why."""
from __future__ import annotations

from .groups import GROUPS, lookalike
from .registry import Registration, installed


def misregistrations() -> list[tuple[Registration, str]]:
    """Entry points in groups that look like stylize's but are not, each with the group meant.

    stylize never loads them; listing them tells an author why a plugin is
    invisible. Read from metadata, nothing imported; sorted by the group
    meant (in ``GROUPS``' order), name and distribution.
    """
    order = {group: i for i, group in enumerate(GROUPS)}
    found = [(reg, lookalike(reg.group)) for reg in installed()]
    return sorted(((reg, meant) for reg, meant in found if meant),
                  key=lambda pair: (order[pair[1]], pair[0].name, pair[0].dist.lower()))
