#!/usr/bin/env python3
"""The ladder and the optimizer state carried across scales: evaluations, CPU seconds and the objective reached.

Each configuration runs the same content and style (bench/multiscale.py's
images) through a Job with VGG19, and is scored by the same full-resolution
objective; evaluations are counted per scale (each objective the level loop
makes counts its own), so the figures survive a loaded machine better than
wall seconds, which are printed beside CPU seconds. Usage:

    .venv/bin/python bench/carry.py --size 256 --iterations 40
    .venv/bin/python bench/carry.py --runs lbfgs32 lbfgs32-carry   # only these rows
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

#: name -> (Settings fields, plugin options): every row differs from the first in one thing.
RUNS = {
    "lbfgs": ({}, {}),
    "lbfgs-sqrt2": ({"ladder": "sqrt2"}, {}),
    "lbfgs32": ({}, {"lbfgs": {"precision": "float32"}}),
    "lbfgs32-carry": ({}, {"lbfgs": {"precision": "float32", "carry": True}}),
    "adam": ({"optimizer": "adam"}, {}),
    "adam-carry": ({"optimizer": "adam"}, {"adam": {"carry": True}}),
    "adam-carry-ema": ({"optimizer": "adam"}, {"adam": {"carry": True, "average": 0.99}}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--json", default="bench/carry.json")
    args = parser.parse_args()

    from multiscale import bench_images, full_resolution_scorer

    from stylize import Job
    from stylize.core.run import levels
    from stylize.core.request.settings import Settings

    content, style = bench_images(args.size)
    score = full_resolution_scorer(content, style)
    made = []
    original = levels.make_objective

    def counted(*a, **k):  # every objective a level makes, to read its evaluations after the run
        made.append(original(*a, **k))
        return made[-1]

    levels.make_objective = counted
    rows = []
    print("| run | scales (px) | iterations | evaluations per scale | CPU s | wall s | objective | vs first |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.runs:
        fields, options = RUNS[name]
        settings = Settings(length=args.size, iterations=args.iterations, threads=args.threads, tol=0,
                            options=options, **fields)
        made.clear()
        job = Job(content, style, settings)
        job.estimate  # the network loads outside the timing
        wall, cpu = time.perf_counter(), time.process_time()
        image = job.run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        row = {"run": name, "scales": [level.length for level in job.plan.levels],
               "iterations": [level.iterations for level in job.plan.levels],
               "evaluations": [objective.evaluations for objective in made], "cpu_s": cpu, "wall_s": wall,
               "objective": score(image)}
        rows.append(row)
        print(f"| {name} | {', '.join(map(str, row['scales']))} | {':'.join(map(str, row['iterations']))} | "
              f"{', '.join(map(str, row['evaluations']))} | {cpu:.0f} | {wall:.0f} | {row['objective']:.4g} | "
              f"{row['objective'] / rows[0]['objective']:.3f} |", flush=True)
    with open(args.json, "w") as f:
        json.dump({"size": args.size, "iterations": args.iterations, "threads": args.threads, "rows": rows}, f,
                  indent=2)


if __name__ == "__main__":
    main()
