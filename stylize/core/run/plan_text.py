"""The run plan as text, one formatter for every driver: the run's plan line, ``--dry-run``, the web page, batch."""
from __future__ import annotations

from ..planning.memory import format_bytes
from ..planning.plan import Plan
from .eta import Clock
from .events import Estimate

#: Columns of ``table``: one row per level.
COLUMNS = ("scale", "size", "iterations", "evaluation", "optimizer", "arithmetic", "memory", "GFLOP/eval",
           "s/iteration")
#: The columns a plan on a cluster (``--scheduler``) adds: each level's machines and a worker's memory.
CLUSTER_COLUMNS = ("machines", "worker memory")


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def summary(plan: Plan, first_step: int = 0) -> str:
    """``planned: 3 scales (128, 256, 512 px), 320 iterations; expected about 5 min 10 s, memory about 1.3 GiB``.

    Names what the plan changed to fit the memory limit (a level's tiles, a smaller optimizer); a
    resumed run (``first_step``) is told the time of what it has left.
    """
    levels = plan.levels
    sizes = ", ".join(str(level.length) for level in levels)
    scales = f"{len(levels)} scales ({sizes} px)" if len(levels) > 1 else f"one scale ({sizes} px)"
    fit = f" to fit {format_bytes(plan.memory_limit)}" if plan.memory_limit else ""
    changed = []
    for level in levels:
        on = f" on {level.machines} worker{'s' if level.machines > 1 else ''}" if level.machines else ""
        said = ([level.evaluation + on] if level.tiles is not None else []) + \
               ([level.optimizer_note + fit] if level.optimizer_note else [])
        if said:
            changed.append(f"{level.length} px {', '.join(said)}")
    parts = [f"planned: {scales}, {plan.iterations - first_step} iterations{''.join(f', {c}' for c in changed)}"]
    if plan.seconds is not None:
        cost = Clock(plan, Estimate.of(plan).level_costs()).cost  # a resumed run has only the rest to do
        left = cost(first_step, plan.iterations) / cost(0, plan.iterations)
        parts.append(f"expected about {duration(plan.seconds * left)}")
    if plan.memory_bytes is not None:
        parts.append(f"memory about {format_bytes(plan.memory_bytes)}" + (" here" if plan.workers else ""))
    if plan.workers:
        parts.append(workers(plan))
    return "; ".join(parts[:1] + [", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def workers(plan: Plan) -> str:
    """``each of 2 workers about 1.2 GiB (of 4.8 GiB usable)``: the cluster's figure beside this machine's."""
    peaks = [level.worker_bytes for level in plan.levels if level.machines and level.worker_bytes]
    limit = f" (of {format_bytes(plan.worker_limit)} usable)" if plan.worker_limit else " (no limit set)"
    peak = f" about {format_bytes(max(peaks))}" if peaks else ""
    used = "" if any(level.machines for level in plan.levels) else ", no scale large enough to use them"
    who = f"each of {plan.workers} workers" if plan.workers > 1 else "the worker"
    return f"{who}{peak}{limit}{used}"


def columns(plan: Plan) -> tuple[str, ...]:
    """``COLUMNS``, and ``CLUSTER_COLUMNS`` for a plan on a cluster."""
    return COLUMNS + (CLUSTER_COLUMNS if plan.workers else ())


def rows(plan: Plan) -> list[tuple[str, ...]]:
    """Each level as the cells of ``columns(plan)`` ("?" where the plan does not know)."""
    out = []
    for level in plan.levels:
        cluster = () if not plan.workers else (
            str(level.machines) if level.machines else "here",
            "-" if not level.machines or level.worker_bytes is None else format_bytes(level.worker_bytes))
        out.append((f"{level.index + 1}/{len(plan.levels)}", f"{level.shape[1]}x{level.shape[0]}",
                    str(level.iterations), level.evaluation,
                    level.optimizer_note or ("?" if level.optimizer is None else "as set"),
                    level.arithmetic or "fp32",
                    "?" if level.bytes is None else format_bytes(level.bytes),
                    "?" if level.flops is None else f"{level.flops / 1e9:.1f}",
                    "?" if level.iteration_seconds is None else f"{level.iteration_seconds:.2f}", *cluster))
    return out


def table(plan: Plan) -> list[str]:
    """``columns`` and ``rows`` aligned, one line each: what ``--dry-run`` prints under the summary."""
    header = columns(plan)
    lines = [header, *rows(plan)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
