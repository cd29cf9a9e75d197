"""bench/quality.py's report: tables, quality.json and the plots, from the work folder's runs and scores.

Per pair: a table per configuration (wall time and the four scores at each
kept image), then a summary against the reference configuration: final
scores, time against the reference's, and when each configuration first
meets all the reference's final scores on VGG, on EfficientNet and on both
(``quality.time_to_reach``). Last, per configuration over all pairs: the
issue's target (at most a fraction of the reference's time, final scores no
worse on both networks on every pair).
"""
from __future__ import annotations

import json
from pathlib import Path

from quality import NETWORKS, SCORES, meets, run_folder, time_to_reach, without

LABELS = {"vgg": "VGG19 max", "effnet": "EffNet-Lite0"}


def load_run(folder: Path, clock: str = "wall") -> dict | None:
    """run.json with each kept image's scores (``checkpoints[i]["scores"][network]``), or None if unfinished.

    ``clock="cpu"``: every time (``t``, ``seconds``) is the run's CPU seconds instead of its wall seconds, so
    that runs made while the machine was busy compare by the work they did; a run recorded before CPU
    seconds were kept has none and is left out.
    """
    try:
        record = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if clock == "cpu":
        if "cpu_seconds" not in record:
            return None
        record["seconds"] = record["cpu_seconds"]
        for point in record["checkpoints"]:
            point["t"] = point["cpu"]
    for network in NETWORKS:
        try:
            scores = json.loads((folder / f"scores-{network}.json").read_text())
        except (OSError, ValueError):
            scores = {}
        for point in record["checkpoints"]:
            point.setdefault("scores", {})
            if point["image"] in scores:
                point["scores"][network] = {kind: scores[point["image"]][kind] for kind in SCORES}
    return record


def final_scores(record: dict) -> dict:
    return record["checkpoints"][-1]["scores"]


def cell(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def when(t: float | None, reference_seconds: float) -> str:
    return "never" if t is None else f"{t:.0f} s ({t / reference_seconds:.2f}x)"


def checkpoint_table(pair: str, name: str, record: dict) -> None:
    lengths = [level["length"] for level in record["levels"]]
    print(f"\n### {pair} / {name}: {record['spec']}; levels {lengths} px, iterations "
          f"{[level['iterations'] for level in record['levels']]}; {record['seconds']:.1f} s; load average "
          f"{record['load'][0][0]:.1f} before, {record['load'][1][0]:.1f} after")
    head = " | ".join(f"{LABELS[n]} {kind}" for n in NETWORKS for kind in SCORES)
    print(f"| step | level | s | {head} |")
    print("|---" * (3 + 2 * len(NETWORKS)) + "|")
    for point in record["checkpoints"]:
        values = " | ".join(cell(point["scores"].get(n, {}).get(kind)) for n in NETWORKS for kind in SCORES)
        mark = " (final)" if point.get("final") else ""
        print(f"| {point['step']}{mark} | {lengths[point['level']]} px | {point['t']:.1f} | {values} |")


def summary(pair: str, records: dict, reference: str) -> dict:
    """The summary table of one pair; returns per configuration what the overall table needs."""
    ref = records.get(reference)
    if ref is None:
        print(f"\n(no finished {reference} run for {pair}: no comparison)")
        return {}
    target, ref_seconds = final_scores(ref), ref["seconds"]
    print(f"\n### {pair}: against {reference} (its final scores; lower is better; times with their ratio "
          f"to {reference}'s {ref_seconds:.0f} s)")
    head = " | ".join(f"{LABELS[n]} {kind}" for n in NETWORKS for kind in SCORES)
    reach = " | ".join(f"reaches on {LABELS[n]}" for n in NETWORKS)
    print(f"| configuration | s | x {reference} | {head} | {reach} | reaches on both | "
          f"final no worse, both networks | time told at the start (x wall) |")
    print("|---" * (4 + 3 * len(NETWORKS) + 2) + "|")
    found = {}
    for name, record in records.items():
        points, final = record["checkpoints"], final_scores(record)
        times = {n: time_to_reach(points, target, (n,)) for n in NETWORKS}
        both = time_to_reach(points, target)
        no_worse = meets(final, target)
        values = " | ".join(cell(final.get(n, {}).get(kind)) for n in NETWORKS for kind in SCORES)
        print(f"| {name} | {record['seconds']:.0f} | {record['seconds'] / ref_seconds:.2f} | {values} | "
              f"{' | '.join(when(times[n], ref_seconds) for n in NETWORKS)} | {when(both, ref_seconds)} | "
              f"{'yes' if no_worse else 'no'} | {told(record)} |")
        found[name] = {"expected": expected_ratio(record), "seconds": record["seconds"], "ratio": record["seconds"] / ref_seconds,
                       "reaches_ratio": None if both is None else both / ref_seconds,
                       "reaches": {**times, "both": both}, "final_no_worse": no_worse, "final": final}
    return found


def expected_ratio(record: dict) -> float | None:
    """The time the run announced at its start over its wall time (the issue's ETA target: within 25%)."""
    seconds = (record.get("expected") or {}).get("seconds")
    return None if seconds is None else seconds / record["seconds"]


def told(record: dict) -> str:
    ratio = expected_ratio(record)
    return "" if ratio is None else f"{record['expected']['seconds']:.0f} s ({ratio:.2f}x)"


def overall(per_pair: dict, reference: str) -> None:
    names = list(dict.fromkeys(name for found in per_pair.values() for name in found))
    if not names:
        return
    print(f"\n### All pairs: against {reference} (the issue's target: at most 0.35x its time, final scores no "
          "worse on both networks on every pair)")
    print(f"| configuration | pairs | wall time x {reference}, worst pair | reaches all of {reference}'s final "
          "scores, worst pair | final no worse on every pair | time told at the start, worst (x wall) |")
    print("|---|---|---|---|---|---|")
    for name in names:
        rows = [found[name] for found in per_pair.values() if name in found]
        reached = [row["reaches_ratio"] for row in rows]
        worst = "never (a pair)" if None in reached else f"{max(reached):.2f}x"
        print(f"| {name} | {len(rows)} | {max(r['ratio'] for r in rows):.2f}x | {worst} | "
              f"{'yes' if all(r['final_no_worse'] for r in rows) else 'no'} | {worst_told(rows)} |")


def worst_told(rows: list[dict]) -> str:
    ratios = [row["expected"] for row in rows if row.get("expected") is not None]
    return f"{max(ratios, key=lambda r: abs(r - 1)):.2f}x" if ratios else ""


def report(work: Path, pairs: list[str], configs: list, reference: str, runs: dict, machine: dict,
           args: dict, curves: list[str], plots: bool = True, clock: str = "wall") -> dict:
    """Print the tables, write ``work/quality.json`` and (``plots``) the PNGs; returns what was written.

    Times are ``clock`` seconds (``load_run``): "wall" or "cpu".
    """
    print(f"\n## Quality against time ({clock} seconds): {machine['cpu']}, {machine['cores']} cores, "
          f"{machine['date']}")
    result = {"machine": machine, "args": {k: str(v) for k, v in args.items()}, "reference": reference,
              "pairs": {}}
    per_pair = {}
    for pair in pairs:
        records = {}
        for config in configs:
            record = load_run(run_folder(work, pair, config), clock)
            if record is not None and record["key"] == runs[pair, config.name]["key"]:
                records[config.name] = record
        print(f"\n## {pair}")
        for name, record in records.items():
            checkpoint_table(pair, name, record)
        per_pair[pair] = summary(pair, records, reference)
        result["pairs"][pair] = {name: {"spec": r["spec"], "key": r["key"], "seconds": r["seconds"],
                                        "levels": r["levels"], "level_starts": r["level_starts"],
                                        "checkpoints": r["checkpoints"], "load": r["load"],
                                        "peak_rss_bytes": r["peak_rss_bytes"], "expected": r.get("expected"),
                                        "against_reference": per_pair[pair].get(name)}
                                 for name, r in records.items()}
        if plots and records:
            import quality_plot
            fronts = [[records[name] for name in group if name in records]
                      for group in front_groups(configs, runs, pair)]
            written = [quality_plot.curves(work / f"quality-{pair}.png", pair,
                                           {n: r for n, r in records.items() if n in curves}, reference),
                       quality_plot.fronts(work / f"fronts-{pair}.png", pair, [f for f in fronts if len(f) > 1])]
            for path in filter(None, written):
                print(f"\nplot: {path}")
    overall(per_pair, reference)
    path = work / "quality.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {path}")
    return result


def front_groups(configs: list, runs: dict, pair: str) -> list[list[str]]:
    """Names of configurations that differ only in ``ratio``, by ratio, in groups of two or more."""
    groups: dict[str, list[str]] = {}
    for config in configs:
        key = runs[pair, config.name]["key"]
        groups.setdefault(without(key, "ratio"), []).append(config.name)
    ratio = {c.name: runs[pair, c.name]["key"]["settings"]["ratio"] for c in configs}
    return [sorted(names, key=ratio.__getitem__) for names in groups.values() if len(names) > 1]
