#!/usr/bin/env python3
"""`--precision bf16` against fp32: seconds per evaluation, and what the rounding costs a run.

Table 1, for each size (square, the astronaut photo with The Scream, VGG19
with the default content + gram objective): seconds per objective
evaluation (forward + backward + losses) in fp32 and in bf16, alternated
in one process (fp32, bf16, fp32, ...) so that a busy spell of this shared
machine slows both alike; the medians of wall time and of process CPU
time (less disturbed by other processes on the cores), the seconds spent
inside sgemm (the shim's clock), and the bf16 evaluation's loss and
gradient against fp32's at the same image.

Table 2: the same single-scale run (``--scales 1``, L-BFGS, --quality-size
px, --iterations N, ``tol`` 0) once in fp32 and once in bf16 through the
Job API; every --every iterations the current image's objective is
evaluated in fp32 (a separate fp32 network), so both runs are scored by the
same yardstick. Prints the objective per iteration, seconds, and whether
each run finished all its iterations (L-BFGS converging without a failed
line search). Writes JSON (--json). Heavy: run it under
``flock /tmp/stylize-bench.lock`` on the shared machine.

    .venv/bin/python bench/precision.py --sizes 256 --repeat 2 --iterations 0   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def objective_at(size: int, precision: str, content, style):
    """VGG19's default objective at ``size`` px, its network in ``precision``."""
    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses, make_backend, make_objective
    from stylize.core.request.settings import Settings

    settings = Settings(length=size, scales=1, options={"caffe-vgg19": {"precision": precision}})
    cls = plugins.load("stylize.backends", settings.backend)
    losses = build_losses(settings, cls)
    backend = make_backend(settings, losses, cls)
    return make_objective(backend, losses, content, style), backend


def measure_evaluations(size: int, repeat: int, threads: int | None) -> dict:
    import numpy as np

    from multiscale import bench_images
    from stylize.backends import bf16
    from stylize.core.run.threads import run_threads

    content, style = bench_images(size)
    objectives = {p: objective_at(size, p, content, style) for p in ("fp32", "bf16")}
    x = objectives["fp32"][1].preprocess(content)
    row = {"size": size, "threads": threads, "load_before": load_average()}
    with run_threads(threads):
        first = {p: objectives[p][0](x) for p in objectives}  # warm-up; bf16 primitives are made here
        (f32, g32), (f16, g16) = first["fp32"], first["bf16"]
        row.update(loss_rel_diff=abs(f16 - f32) / abs(f32),
                   grad_rel_diff=float(np.linalg.norm(g16 - g32) / np.linalg.norm(g32)),
                   grad_cosine=float(np.vdot(g16, g32) / np.linalg.norm(g16) / np.linalg.norm(g32)))
        runs = {p: {"wall": [], "cpu": [], "gemm": []} for p in objectives}
        for _ in range(repeat):
            for p, (objective, _) in objectives.items():
                gemm, cpu, wall = bf16.counts()["seconds"], time.process_time(), time.perf_counter()
                objective(x)
                runs[p]["wall"].append(time.perf_counter() - wall)
                runs[p]["cpu"].append(time.process_time() - cpu)
                runs[p]["gemm"].append(bf16.counts()["seconds"] - gemm)
    row["runs"] = runs
    row["median"] = {p: {k: statistics.median(v) for k, v in r.items()} for p, r in runs.items()}
    row["load_after"] = load_average()
    return row


def measure_run(size: int, iterations: int, every: int) -> dict:
    from multiscale import bench_images
    from stylize import Job, events

    content, style = bench_images(size)
    yardstick, _ = objective_at(size, "fp32", content, style)
    result = {"size": size, "iterations": iterations, "load_before": load_average()}
    for precision in ("fp32", "bf16"):
        curve, stamps, scoring = [], [], [0.0]

        def on_event(event):
            if isinstance(event, events.Step):
                stamps.append(time.perf_counter())
                if event.step % every == 0 or event.step == iterations:
                    start = time.perf_counter()
                    curve.append((event.step, float(yardstick(event.result.x)[0]), float(event.loss)))
                    scoring[0] += time.perf_counter() - start

        job = Job(content, style, length=size, scales=1, iterations=iterations, tol=0.0,
                  options={"caffe-vgg19": {"precision": precision}})
        start = time.perf_counter()
        try:
            job.run(on_event)
            outcome = "finished"
        except Exception as e:  # a failed run is a result here, reported with the rest
            outcome = f"{type(e).__name__}: {e}"
        result[precision] = {"curve": curve, "steps": len(stamps), "outcome": outcome,
                             "seconds": time.perf_counter() - start - scoring[0]}
    result["load_after"] = load_average()
    return result


def print_tables(rows: list[dict], run: dict | None) -> None:
    if rows:
        print("| size | threads | fp32 s/eval | bf16 s/eval | speed-up | fp32 CPU s | bf16 CPU s | CPU speed-up "
              "| sgemm s fp32 / bf16 | loss diff | grad diff | grad cosine | load before / after |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            a, b = r["median"]["fp32"], r["median"]["bf16"]
            print(f"| {r['size']} | {r['threads'] or 'default'} | {a['wall']:.3f} | {b['wall']:.3f} | "
                  f"{a['wall'] / b['wall']:.2f}x | {a['cpu']:.3f} | {b['cpu']:.3f} | {a['cpu'] / b['cpu']:.2f}x | "
                  f"{a['gemm']:.2f} / {b['gemm']:.2f} | {r['loss_rel_diff']:.2%} | {r['grad_rel_diff']:.2%} | "
                  f"{r['grad_cosine']:.4f} | {r['load_before']} / {r['load_after']} |")
        print()
    if run:
        a, b = run["fp32"], run["bf16"]
        print(f"Single-scale {run['size']} px run, {run['iterations']} L-BFGS iterations; objective evaluated in fp32 "
              f"(load {run['load_before']} / {run['load_after']}):\n")
        print("| iteration | fp32 run | bf16 run | bf16 / fp32 |")
        print("|---|---|---|---|")
        bf = {step: value for step, value, _ in b["curve"]}
        for step, value, _ in a["curve"]:
            if step in bf:
                print(f"| {step} | {value:.5g} | {bf[step]:.5g} | {bf[step] / value:.3f} |")
        for name, r in (("fp32", a), ("bf16", b)):
            print(f"\n{name}: {r['steps']} iterations, {r['outcome']}, {r['seconds']:.0f} s "
                  f"({r['seconds'] / max(1, r['steps']):.2f} s / iteration, scoring excluded)", end="")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512])
    parser.add_argument("--repeat", type=int, default=5, help="timed evaluation pairs per size")
    parser.add_argument("--threads", type=int, nargs="+", default=[0], help="BLAS threads (0: default)")
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=40, help="of each quality run (0: skip them)")
    parser.add_argument("--every", type=int, default=5, help="score the image every N iterations")
    parser.add_argument("--json", default=os.path.join(HERE, "precision.json"))
    args = parser.parse_args()
    from stylize.backends import bf16
    if bf16.problem():
        sys.exit(f"bench/precision.py: bf16 unavailable here: {bf16.problem()}")
    rows = []
    for threads in args.threads:
        for size in args.sizes:
            rows.append(measure_evaluations(size, args.repeat, threads or None))
            print(f"  {size} px: {rows[-1]['median']}", file=sys.stderr, flush=True)
    run = measure_run(args.quality_size, args.iterations, args.every) if args.iterations else None
    print_tables(rows, run)
    with open(args.json, "w") as f:
        json.dump({"cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": "),
                   "cores": os.cpu_count(), "evaluations": rows, "run": run}, f, indent=2)


if __name__ == "__main__":
    main()
