#!/usr/bin/env python3
"""L-BFGS in float64 (scipy's L-BFGS-B) against float32 (stylize/optimizers/lbfgs32.py): what the float32 history costs.

Each run is a real ``stylize.Job`` (VGG19, content + gram, the astronaut
photo styled by *The Scream*, one scale, content start, seed 0) with
``--set lbfgs.precision=float64`` or ``float32``, in its own subprocess;
the precisions alternate, size by size, so that both meet the same load.
For each: the objective after 25, 50, 100, ... iterations, the iterations
the other precision needs to reach the same objective, the objective
evaluations spent (line searches) and the seconds per iteration.

    .venv/bin/python bench/lbfgs_precision.py                      # 256 and 512 px, 120 iterations
    .venv/bin/python bench/lbfgs_precision.py --sizes 128 --iterations 30

Prints a markdown table with the load average and writes bench/lbfgs_precision.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRECISIONS = ("float64", "float32")

CHILD = r"""
import json, sys, time
from stylize.core.run import events
from stylize.core.run.job import Job
from stylize.core.evaluation.objective import Objective
spec = json.loads(sys.argv[1])
calls = [0]
original = Objective.__call__
def counted(self, x):
    calls[0] += 1
    return original(self, x)
Objective.__call__ = counted
steps = []
def on_event(event):
    if isinstance(event, events.Step):
        steps.append({"loss": event.loss, "elapsed": event.elapsed, "evaluations": calls[0]})
job = Job(spec["content"], spec["style"], length=spec["length"], scales=1, iterations=spec["iterations"],
          init="content", seed=0, threads=spec["threads"], options={"lbfgs": {"precision": spec["precision"]}})
job.run(on_event)
print(json.dumps({"steps": steps}))
"""


def run(length: int, precision: str, args) -> dict:
    spec = {"content": args.content, "style": args.style, "length": length, "iterations": args.iterations,
            "precision": precision, "threads": args.threads}
    before = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], stdout=subprocess.PIPE, text=True,
                          cwd=ROOT, check=True)
    steps = json.loads(done.stdout.strip().splitlines()[-1])["steps"]
    return {**spec, "steps": steps, "load": [before, os.getloadavg()[0]]}


def reached(steps: list[dict], loss: float) -> int | None:
    """The first iteration whose objective is at most ``loss``."""
    return next((i + 1 for i, s in enumerate(steps) if s["loss"] <= loss), None)


def table(results: list[dict], marks: list[int]) -> str:
    lines = ["| size | precision | " + " | ".join(f"objective at {m}" for m in marks) +
             " | iterations the other needs for the last | evaluations | s / iteration |",
             "|---|---|" + "---|" * len(marks) + "---|---|---|"]
    for r in results:
        steps = r["steps"]
        other = next(o for o in results if o["length"] == r["length"] and o["precision"] != r["precision"])
        last = steps[-1]["loss"]
        needs = reached(other["steps"], last)
        values = " | ".join(f"{steps[m - 1]['loss']:.4g}" if m <= len(steps) else "" for m in marks)
        lines.append(f"| {r['length']} px | {r['precision']} | {values} | {needs or '> ' + str(len(other['steps']))} | "
                     f"{steps[-1]['evaluations']} for {len(steps)} | {steps[-1]['elapsed'] / len(steps):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--threads", type=int, default=None, help="Caffe's threads (default: every core)")
    parser.add_argument("--content", default=os.path.join(ROOT, "examples", "images", "astronaut.jpg"))
    parser.add_argument("--style", default=os.path.join(ROOT, "examples", "images", "the_scream.jpg"))
    parser.add_argument("--json", default=os.path.join(HERE, "lbfgs_precision.json"))
    args = parser.parse_args()
    results = []
    for length in args.sizes:
        for precision in PRECISIONS:
            results.append(run(length, precision, args))
            print(f"{length} px {precision}: objective {results[-1]['steps'][-1]['loss']:.4g}", file=sys.stderr,
                  flush=True)
            with open(args.json, "w") as f:
                json.dump({"cpu": os.cpu_count(), "runs": results}, f, indent=1)
    marks = [m for m in (10, 25, 50, 100, 200, 400) if m < args.iterations] + [args.iterations]
    print(table(results, marks))
    print("\nload average (1 min) before/after each run: "
          + ", ".join(f"{r['load'][0]:.1f}/{r['load'][1]:.1f}" for r in results))


if __name__ == "__main__":
    main()
