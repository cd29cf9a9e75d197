"""How fast this machine runs a backend: measured by each long run, read by the next run's estimate.

An expected time from FLOP counts needs a FLOP rate, and that rate is the
machine's (cores, BLAS kernels, cache) more than the network's. A fixed
guess is right on one machine only; so every run longer than
``MIN_SECONDS`` records the rate it achieved, per backend, thread count
and arithmetic (``Backend.arithmetic``: a bf16 level runs the same FLOPs
in less time than a float32 one), in ``$STYLIZE_HOME/cache/speed.json``,
and the next estimate uses it. Short runs (tests, drafts) and runs of few iterations (a couple of
iterations at print size spend most of their time making targets) are not
recorded: their rate is not an iteration's. A new rate is blended with the
recorded one (geometric mean), so one run on a loaded machine moves the
next estimate half way, not all the way.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io.config import stylize_home
from ..io.files import atomic_write

#: FLOP/s assumed before this machine has recorded a rate: VGG19's at 512 px by bench/speed.py.
ASSUMED_RATE = 90e9
#: Runs shorter than this (seconds), or with fewer iterations, are not recorded.
MIN_SECONDS = 20.0
MIN_ITERATIONS = 20


def _path() -> Path:
    return stylize_home() / "cache" / "speed.json"


def _key(backend: str, threads: int | None, arithmetic: str = "") -> str:
    return f"{backend}/{threads or 'default'}" + (f"/{arithmetic}" if arithmetic else "")


def _read() -> dict:
    try:
        rates = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return rates if isinstance(rates, dict) else {}


def rate(backend: str, threads: int | None, arithmetic: str = "") -> float:
    """FLOP/s one objective evaluation runs at: this machine's last measurement (in the ordinary
    arithmetic until one in ``arithmetic`` is recorded), else ASSUMED_RATE."""
    rates = _read()
    value = rates.get(_key(backend, threads, arithmetic)) or rates.get(_key(backend, threads))
    return float(value) if isinstance(value, (int, float)) and value > 0 else ASSUMED_RATE


def record(backend: str, threads: int | None, flops: float, seconds: float, iterations: int,
           arithmetic: str = "") -> None:
    """Remember the rate of ``iterations`` costing ``flops`` done in ``seconds`` (if long enough)."""
    if seconds < MIN_SECONDS or iterations < MIN_ITERATIONS or flops <= 0:
        return
    rates = _read()
    key, measured = _key(backend, threads, arithmetic), flops / seconds
    old = rates.get(key)
    rates[key] = (old * measured) ** 0.5 if isinstance(old, (int, float)) and old > 0 else measured
    try:
        with atomic_write(_path()) as f:
            f.write((json.dumps(rates, indent=1, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # a read-only cache only costs the next estimate its precision
