#!/usr/bin/env python3
"""Exact tiled evaluation: seconds per evaluation and peak memory, tiled and whole, against the estimate.

Each row is a real `stylize run` (through ``stylize.Job``: one scale, the
shipwreck photo styled by *The Scream*, VGG19, content + gram) in its own
subprocess, so that peaks don't mix: the seconds per objective evaluation
at that scale (the mean over the run's evaluations, targets not included),
the peak resident memory of the process (VmHWM) against the run's estimate
(``Job.estimate``, what the memory check compares with the limit), the
tiling the plan chose, and the wall time of the run. ``--tile-size`` and
the memory limit (``STYLIZE_MEMORY_LIMIT``) are set per row: a limit below
the whole image's estimate makes ``auto`` tile.

    .venv/bin/python bench/tiling.py                       # the 1024 px rows (overhead), then 2048 px
    .venv/bin/python bench/tiling.py --rows 4096           # the print-size runs (20 and 30 min on 2 cores)
    .venv/bin/python bench/tiling.py --rows 4096 --optimizers lbfgs   # only the default optimizer's
    .venv/bin/python bench/tiling.py --rows 1024 --iterations 2
    .venv/bin/python bench/tiling.py --overhead 1024       # whole and tiled alternated: the overhead ratio

Prints a markdown table with the load average and writes bench/tiling.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GIB = 2 ** 30

#: name -> (length, tile size, memory limit: bytes, or a share of the whole run's estimate, optimizer)
ROWS = {
    "1024": [(1024, "off", None, "lbfgs"), (1024, "auto", 0.85, "lbfgs"), (1024, "512", None, "lbfgs")],
    "2048": [(2048, "off", None, "lbfgs"), (2048, "auto", 6 * GIB, "lbfgs")],
    "4096": [(4096, "auto", 12 * GIB, "adam"), (4096, "auto", 12 * GIB, "lbfgs")],  # L-BFGS: float32 history
}

CHILD = r"""
import json, sys, time
from stylize.core.run.job import Job
from stylize.core.evaluation.objective import Objective
from stylize.core.evaluation.tiled_objective import TiledObjective
spec = json.loads(sys.argv[1])
times = []
def peak():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
for cls in (Objective, TiledObjective):
    def timed(self, x, _call=cls.__call__):
        start = time.perf_counter()
        try:
            return _call(self, x)
        finally:
            times.append(time.perf_counter() - start)
            print(json.dumps({"evaluation": len(times), "seconds": times[-1], "peak": peak()}), file=sys.stderr,
                  flush=True)
    cls.__call__ = timed
job = Job(spec["content"], spec["style"], length=spec["length"], scales=1, iterations=spec["iterations"],
          tile_size=spec["tile_size"], optimizer=spec["optimizer"], seed=0)
start = time.perf_counter()
estimate = job.estimate
note = (estimate.optimizer_notes or (None,))[-1]  # e.g. "L-BFGS history in float32"
print(json.dumps({"tiles": estimate.tiles[-1], "note": note, "estimate": estimate.memory_bytes, "peak": peak()}),
      file=sys.stderr, flush=True)
job.run()
wall = time.perf_counter() - start
print(json.dumps({"shape": list(job.plan.final.shape), "tiles": estimate.tiles[-1], "note": note,
                  "estimate": estimate.memory_bytes,
                  "limit": estimate.memory_limit, "peak": peak(), "evaluations": len(times),
                  "seconds_per_evaluation": sum(times) / len(times), "wall": wall}))
"""


OVERHEAD = r"""
import json, statistics, sys, time
import numpy as np
from stylize.core.io.images import fit_long_side, load_image, resize
from stylize.core.evaluation.objective import build_losses, make_backend, make_objective
from stylize.core.request.settings import Settings
from stylize.core.evaluation.tiled_objective import make_tiled_objective
from stylize.core.evaluation.tiling import make_tiles
from stylize.core.run.threads import run_threads
spec = json.loads(sys.argv[1])
settings = Settings()
from stylize.core import plugins
cls = plugins.load("stylize.backends", settings.backend)
losses = build_losses(settings, cls)
backend = make_backend(settings, losses, cls)
content = load_image(spec["content"])
content = resize(content, fit_long_side(content.shape[:2], spec["length"]))
style = load_image(spec["style"])
style = resize(style, fit_long_side(style.shape[:2], spec["length"]))
tiling = backend.tiling(sorted({l for t in losses for l in t.loss.layers}))
x = backend.preprocess(content)
with run_threads(None):
    objectives = {"whole": make_objective(backend, losses, content, style)}
    for core in spec["cores"]:
        tiles = make_tiles(tiling, core)
        objectives[tiles.grid(content.shape).describe()] = make_tiled_objective(backend, losses, content, style, tiles)
    times = {name: [] for name in objectives}
    values = {}
    for round in range(spec["rounds"]):
        for name, objective in objectives.items():
            start = time.perf_counter()
            values[name] = objective(x)[0]
            times[name].append(time.perf_counter() - start)
whole = times["whole"]
print(json.dumps({"shape": list(content.shape[:2]), "seconds": {n: statistics.median(t) for n, t in times.items()},
                  "ratio": {n: statistics.median(a / b for a, b in zip(t, whole)) for n, t in times.items()},
                  "relative_value_difference": {n: abs(v - values["whole"]) / values["whole"] for n, v in values.items()}}))
"""


def overhead(args) -> dict:
    """Whole and tiled evaluations alternated in one process (so that both meet the same load)."""
    spec = {"content": args.content, "style": args.style, "length": args.overhead, "rounds": args.rounds,
            "cores": [[args.overhead, args.overhead // 2], args.overhead // 2]}
    env = {**os.environ, "STYLIZE_MEMORY_LIMIT": "off"}
    done = subprocess.run([sys.executable, "-c", OVERHEAD, json.dumps(spec)], stdout=subprocess.PIPE, text=True,
                          env=env, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def estimate_whole(length: int, content: str, style: str, optimizer: str) -> int:
    """The whole-image run's estimate (no limit), for rows whose limit is a share of it."""
    code = ("import json, os, sys\nos.environ['STYLIZE_MEMORY_LIMIT'] = '100000GiB'\n"
            "from stylize.core.run.job import Job\n"
            f"print(Job({content!r}, {style!r}, length={length}, scales=1, tile_size='off', "
            f"optimizer={optimizer!r}).estimate.memory_bytes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.split()[-1])


def run_row(length, tile_size, limit, optimizer, args) -> dict:
    env = dict(os.environ)
    if isinstance(limit, float):
        limit = int(limit * estimate_whole(length, args.content, args.style, optimizer))
    env["STYLIZE_MEMORY_LIMIT"] = str(limit) if limit else "100000GiB"
    spec = {"content": args.content, "style": args.style, "length": length, "iterations": args.iterations,
            "tile_size": tile_size, "optimizer": optimizer}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], stdout=subprocess.PIPE, text=True,
                          env=env, cwd=ROOT)  # the child's progress lines go to stderr as they come
    if done.returncode:
        return {**spec, "error": f"exit code {done.returncode} (its message is on stderr)"}
    return {**spec, **json.loads(done.stdout.strip().splitlines()[-1])}


def table(results: list[dict]) -> str:
    lines = ["| length | --tile-size | optimizer | tiling | s / evaluation | peak | estimate | peak / estimate | run |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['length']} | {r['tile_size']} | {r['optimizer']} | error: {r['error']} | | | | | |")
            continue
        h, w = r["shape"]
        how = ", ".join(filter(None, [r["tiles"] or "whole", r.get("note")]))
        lines.append(f"| {w}x{h} | {r['tile_size']} | {r['optimizer']} | {how} | "
                     f"{r['seconds_per_evaluation']:.1f} | {r['peak'] / GIB:.2f} GiB | {r['estimate'] / GIB:.2f} GiB | "
                     f"{r['peak'] / r['estimate']:.2f} | {r['wall']:.0f} s, {r['evaluations']} evaluations |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=["1024", "2048"], choices=sorted(ROWS))
    parser.add_argument("--iterations", type=int, default=3, help="iterations of each run (one scale)")
    parser.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"], help="only the rows of these")
    parser.add_argument("--content", default=os.path.join(ROOT, "examples", "images", "shipwreck.jpg"))
    parser.add_argument("--style", default=os.path.join(ROOT, "examples", "images", "the_scream.jpg"))
    parser.add_argument("--json", default=os.path.join(HERE, "tiling.json"))
    parser.add_argument("--overhead", type=int, metavar="LENGTH",
                        help="instead of the rows: whole and tiled evaluations (strips and 2x2 tiles of half the "
                             "length) alternated in one process at LENGTH px, median seconds and ratio")
    parser.add_argument("--rounds", type=int, default=3, help="with --overhead: evaluations of each")
    args = parser.parse_args()
    if args.overhead:
        before = os.getloadavg()[0]
        result = overhead(args)
        print("| tiling | s / evaluation | tiled / whole (median of pairs) | value vs whole |\n|---|---|---|---|")
        for name, seconds in result["seconds"].items():
            print(f"| {name} | {seconds:.1f} | {result['ratio'][name]:.2f} | "
                  f"{result['relative_value_difference'][name]:.1e} |")
        print(f"\n{result['shape'][1]}x{result['shape'][0]} px, {args.rounds} rounds; load average (1 min) "
              f"{before:.1f} before, {os.getloadavg()[0]:.1f} after")
        return
    results = []
    for name in args.rows:
        for row in (r for r in ROWS[name] if r[3] in args.optimizers):
            before = os.getloadavg()[0]
            result = run_row(*row, args)
            result["load"] = [before, os.getloadavg()[0]]
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            with open(args.json, "w") as f:
                json.dump({"cpu": os.cpu_count(), "rows": results}, f, indent=1)
    print(table(results))
    print(f"\nload average (1 min) before/after each row: "
          + ", ".join(f"{r['load'][0]:.1f}/{r['load'][1]:.1f}" for r in results))


if __name__ == "__main__":
    main()
