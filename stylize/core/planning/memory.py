"""Will a run fit in memory? Its estimate against what the machine has, checked before it starts.

The backend estimates the peak resident memory of the process for an image
size (``Backend.estimate_peak_bytes``), the optimizer adds its own state
(``Optimizer.memory_bytes``). A run that would need more than the machine
can give is refused with a ``ResourceError`` that names the largest
``--length`` that would fit, instead of being killed by the kernel hours in.

What the machine can give is ``MemAvailable`` (``/proc/meminfo``) plus what
this process already holds, or less under a cgroup memory limit. The
environment variable ``STYLIZE_MEMORY_LIMIT`` replaces it: bytes, or a
number with a unit (``512MiB``, ``4G``, ``1.5GiB``); ``off`` skips the check.
"""
from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Callable, Sequence

from ..errors import ImageError, ResourceError, StylizeError, UsageError
from ..request.schedule import sizes_at

#: Environment variable that sets the memory a run may use ("off": no check).
LIMIT_VARIABLE = "STYLIZE_MEMORY_LIMIT"
#: Lengths the refusal proposes are multiples of LENGTH_STEP, at least MIN_LENGTH
#: (smaller probes could shrink a network's deepest layers to nothing).
LENGTH_STEP = 32
MIN_LENGTH = 64

_UNITS = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_bytes(text: str) -> int:
    """``"1073741824"``, ``"512M"``, ``"512MiB"``, ``"1.5 GB"`` -> bytes (units are powers of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"{LIMIT_VARIABLE}={text!r}: expected bytes or a size like 512MiB or 4GiB, "
                         "or 'off'")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_bytes(size: float) -> str:
    if size >= 2 ** 30:
        return f"{size / 2 ** 30:.1f} GiB"
    return f"{size / 2 ** 20:.0f} MiB"


def resident_bytes() -> int | None:
    """This process's resident memory now (VmRSS), or None where /proc is missing."""
    return _read_kib(Path("/proc/self/status"), "VmRSS:")


def peak_resident_bytes(pid: int | str = "self") -> int | None:
    """The highest resident memory (VmHWM) of a process since it started its program, or None.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that across ``exec``, so a
    child started by a 2 GB test runner reports at least 2 GB whatever it used.
    """
    return _read_kib(Path(f"/proc/{pid}/status"), "VmHWM:")


def _read_kib(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2, then v1), or None when unlimited."""
    for path in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2 ** 60:
            return int(text)
    return None


def memory_limit() -> tuple[int, str] | None:
    """(bytes this process may grow to, where that figure comes from), or None: don't check."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if text:
        if text.lower() in ("off", "none", "no"):
            return None
        return parse_bytes(text), f"the limit {LIMIT_VARIABLE} sets"
    available = _read_kib(Path("/proc/meminfo"), "MemAvailable:")
    if available is None:
        return None
    limit, source = available + (resident_bytes() or 0), "available"
    cgroup = _cgroup_limit()
    if cgroup is not None and cgroup < limit:
        limit, source = cgroup, "allowed by the cgroup memory limit"
    return limit, source


def estimate_run_bytes(backend, optimizer, content_shape: Sequence[int],
                       style_shapes: Sequence[Sequence[int]], losses: Sequence = (),
                       iterations: int | None = None) -> int | None:
    """Estimated peak resident memory of a run at these image sizes (H, W), or None if unknown.

    The network's activations follow the largest image it sees (the content
    or a style image); the optimizer's state and the terms' own memory
    (``Loss.memory_bytes`` of ``losses``) follow the output; ``iterations``:
    the most the optimizer runs (see ``optimizer_bytes``).
    """
    estimate = getattr(backend, "estimate_peak_bytes", None)
    if estimate is None:
        return None
    shapes = {tuple(int(d) for d in shape[:2]) for shape in [content_shape, *style_shapes]}
    network = [estimate(shape) for shape in shapes]
    if any(value is None for value in network):
        return None
    variables = 3 * int(content_shape[0]) * int(content_shape[1])
    return max(network) + optimizer_bytes(optimizer, variables, iterations) + terms_bytes(losses, content_shape)


def optimizer_bytes(optimizer, size: int, iterations: int | None = None) -> int:
    """The state ``optimizer`` holds for ``size`` variables (``Optimizer.memory_bytes``), over at most
    ``iterations`` iterations where it takes them: the float32 L-BFGS fills one history pair per
    iteration, so a short run holds less."""
    memory_bytes = getattr(optimizer, "memory_bytes", None)
    if memory_bytes is None:
        return 0
    if iterations is not None and "iterations" in inspect.signature(memory_bytes).parameters:
        return int(memory_bytes(size, iterations=iterations))
    return int(memory_bytes(size))


def terms_bytes(losses: Sequence, shape: Sequence[int]) -> int:
    """What the terms (``WeightedLoss`` or ``Loss``) hold themselves for an output of ``shape``."""
    return sum(int(getattr(getattr(t, "loss", t), "memory_bytes", lambda s: 0)(shape[:2])) for t in losses)


def terms_note(losses: Sequence, shape: Sequence[int]) -> str:
    """``", of which the affine term 1.5 GiB"``: what a refusal says of the terms that declare memory, so
    that the user sees what dropping one would save; empty when none does."""
    held = ((t, terms_bytes([t], shape)) for t in losses)
    parts = [f"the {getattr(t, 'name', type(t).__name__)} term {format_bytes(n)}" for t, n in held if n > 0]
    return f", of which {' and '.join(parts)}" if parts else ""


def check_terms_fit(losses: Sequence, content_shape: Sequence[int], style_shapes: Sequence[Sequence[int]],
                    style_scale: float = 1.0) -> None:
    """Refuse (ResourceError) a run whose terms' own memory alone exceeds the limit, naming them and the
    largest length they can be built at: tiles shrink the network's share, never theirs (the affine
    term's matting Laplacian is image-sized), so the run's other refusals would not say why."""
    limit = memory_limit()
    heavy = [t for t in losses if terms_bytes([t], content_shape) > 0]
    if limit is None or not heavy or terms_bytes(heavy, content_shape) <= limit[0]:
        return
    limit, source = limit

    low = largest_length(lambda length: terms_bytes(heavy, sizes_at(length, content_shape, style_shapes,
                                                                     style_scale)[0]),
                         limit, max(content_shape[:2]) - 1)
    names = " and ".join(f"the {getattr(t, 'name', type(t).__name__)} term" for t in heavy)
    advice = (f"it can be built up to --length {low}: lower --length" if low is not None
              else f"it cannot be built even at --length {MIN_LENGTH}")
    h, w = content_shape[:2]
    raise ResourceError(f"not enough memory for {names}: a {w}x{h} px output needs about "
                        f"{format_bytes(terms_bytes(heavy, content_shape))} for it alone (estimated, "
                        f"built for the whole image, never tiled), {format_bytes(limit)} is {source}; {advice}, "
                        f"or drop it (--preset photo adds the affine term) "
                        f"(or set {LIMIT_VARIABLE}=off to try anyway)")


def last_fitting(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest ``k`` in ``low..high`` that ``fits`` (``low`` if none above it), for ``fits`` true up
    to some ``k`` and false above: memory grows with a length or a tile, so this bisects (a few dozen
    estimates at most). Every "what fits" question of a plan is asked through it."""
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def within(needed: Callable[[], int | None], limit: int) -> bool:
    """``needed()`` is known and at most ``limit``; an estimate that refuses (a size too large for
    Caffe, too small for the network) does not fit."""
    try:
        value = needed()
    except StylizeError:
        return False
    return value is not None and value <= limit


def largest_length(needed: Callable[[int], int | None], limit: int, top: int) -> int | None:
    """The largest multiple of LENGTH_STEP from MIN_LENGTH up to ``top`` whose ``needed(length)`` bytes fit
    ``limit``, or None. A length too small for the network (ImageError) takes no memory worth the
    name while searching, but is no answer."""

    def fits(steps: int) -> bool:
        try:
            bytes_needed = needed(steps * LENGTH_STEP)
        except ImageError:
            return True
        except StylizeError:  # e.g. too large for Caffe
            return False
        return bytes_needed is not None and bytes_needed <= limit

    first = -(-MIN_LENGTH // LENGTH_STEP)  # in steps of LENGTH_STEP; first - 1 = nothing fits
    low = last_fitting(fits, first - 1, top // LENGTH_STEP)
    if low < first:
        return None
    try:  # below the network's smallest input nothing fits
        needed(low * LENGTH_STEP)
    except StylizeError:
        return None
    return low * LENGTH_STEP


def refusal(what: str, needed: int, note: str, limit: tuple[int, str], advice: str) -> ResourceError:
    """The one-line refusal of a run over the limit: what needs how much (``note``: of which the terms),
    what the machine gives, what would fit."""
    return ResourceError(f"not enough memory: {what} needs about {format_bytes(needed)} (estimated{note}), "
                         f"{format_bytes(limit[0])} is {limit[1]}; {advice} (or set {LIMIT_VARIABLE}=off "
                         "to try anyway)")


def check_fits(backend, settings, content_shape: Sequence[int],
               style_shapes: Sequence[Sequence[int]], optimizer=None, losses: Sequence = (),
               iterations: int | None = None) -> int | None:
    """Raise ResourceError when the run's estimated peak exceeds the memory the machine can give.

    ``content_shape`` is the output's size; style images are scaled to
    ``settings.style_scale`` times its long side, as the run's last level does.
    ``optimizer``: the one the run plan chose (default: the settings'); ``losses``: the terms, whose
    own memory (``Loss.memory_bytes``) counts; ``iterations``: the level's (``optimizer_bytes``).
    Returns the estimate (bytes; None when the check is off or the backend
    cannot tell), so that benchmarks can set it beside the measured peak.
    """
    limit = memory_limit()
    if limit is None:
        return None
    if optimizer is None:
        from .. import plugins
        optimizer = plugins.make_optimizer(settings)

    def needed(length: int) -> int | None:
        return estimate_run_bytes(backend, optimizer, *sizes_at(length, content_shape, style_shapes,
                                                                settings.style_scale), losses, iterations)

    estimate = needed(max(content_shape[:2]))
    if estimate is None or estimate <= limit[0]:
        return estimate
    fitting = largest_length(needed, limit[0], max(content_shape[:2]) - 1)
    advice = f"--length {fitting} would fit" if fitting else f"no --length from {MIN_LENGTH} px up would fit"
    h, w = content_shape[:2]
    raise refusal(f"a {w}x{h} px run", estimate, terms_note(losses, content_shape), limit, advice)
