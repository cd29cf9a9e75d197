"""stylize's entry-point groups, the contract each group's plugins implement, and groups that only look like them."""
from __future__ import annotations

import difflib
import re

from ..contracts import Backend, Loss, Optimizer, StartImage

BACKENDS, LOSSES, OPTIMIZERS, STARTS = "stylize.backends", "stylize.losses", "stylize.optimizers", "stylize.starts"
#: Entry-point group -> the contract its plugins implement.
GROUPS = {BACKENDS: Backend, LOSSES: Loss, OPTIMIZERS: Optimizer, STARTS: StartImage}
#: Entry-point group -> the word a message uses for one of its plugins.
KIND = {BACKENDS: "backend", LOSSES: "loss", OPTIMIZERS: "optimizer", STARTS: "start"}


def _squeezed(group: str) -> str:
    return re.sub(r"[^a-z0-9]", "", group.lower())


def lookalike(group: str) -> str | None:
    """The stylize group that ``group`` looks like a misspelling of, or None.

    Case and separators are ignored (``Stylize.Backends``, ``stylize_losses``)
    and small misspellings forgiven (``stylize.loss``, ``stylize.optimiser``,
    ``stylise.losses``); stylize's own groups look like nothing.
    """
    if group in GROUPS:
        return None
    squeezed = {_squeezed(known): known for known in GROUPS}
    close = difflib.get_close_matches(_squeezed(group), list(squeezed), n=1, cutoff=0.8)
    return squeezed[close[0]] if close else None
