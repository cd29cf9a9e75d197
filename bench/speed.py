#!/usr/bin/env python3
"""Speed and memory of the default objective (VGG19, content + gram) on this machine.

For each size: seconds per objective evaluation (one forward + backward) as
the median of repeated runs, the same with the weight gradients that stock
Caffe computes under force_backward (what stylize's Caffe patch skips), seconds per L-BFGS iteration of the real
pipeline, and the peak resident memory of a process doing only that size
(each size runs in a fresh subprocess so peaks don't mix). Prints a table and
writes JSON (``--json``). Run it with ``make bench`` or
``.venv/bin/python bench/speed.py --sizes 256 512``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def median_eval(objective, x, repeat: int) -> list[float]:
    objective(x)  # warm-up: allocations, BLAS thread start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        objective(x)
        times.append(time.perf_counter() - start)
    return times


def measure(size: int, repeat: int, iterations: int) -> dict:
    import numpy as np
    from skimage import data

    from stylize.backends.vgg import VGG19
    from stylize.core.images import load_image, resize
    from stylize.core.pipeline import Settings, build_losses, make_backend, make_objective, transfer

    content = resize(data.astronaut().astype(np.float32) / 255.0, (size, size))
    style = resize(load_image(os.path.join(os.path.dirname(__file__), "..", "examples", "images",
                                           "the_scream.jpg")), (size, size))
    settings = Settings(length=size, iterations=iterations, scales=1)
    losses = build_losses(settings, VGG19)
    objective = make_objective(make_backend(settings, losses), losses, content, style)
    x = objective.backend.preprocess(content)
    times = median_eval(objective, x, repeat)
    del objective  # the pipeline builds its own network; don't count two in the peak

    # The same objective with weight gradients, as stock Caffe computes them under
    # force_backward: without lr_mult entries our Caffe patch has nothing to skip.
    from stylize.backends import prototxt
    frozen_blobs = prototxt._param_blobs
    prototxt._param_blobs = lambda layer: 0
    try:
        with_grads = make_objective(make_backend(settings, losses), losses, content, style)
        weight_grad_times = median_eval(with_grads, x, repeat)
        del with_grads
    finally:
        prototxt._param_blobs = frozen_blobs

    stamps = []
    transfer(content, style, settings, callback=lambda result: stamps.append(time.perf_counter()))
    # Between the first and last iteration: excludes network set-up and targets.
    per_iteration = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"size": size, "eval_s": statistics.median(times), "eval_runs": times,
            "eval_with_weight_grads_s": statistics.median(weight_grad_times),
            "lbfgs_iteration_s": per_iteration, "lbfgs_iterations": len(stamps),
            "peak_rss_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeat", type=int, default=5, help="evaluations per size (median)")
    parser.add_argument("--iterations", type=int, default=10, help="L-BFGS iterations per size")
    parser.add_argument("--json", default="bench/results.json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat, args.iterations)))
        return
    rows = []
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(size), "--repeat", str(args.repeat),
                              "--iterations", str(args.iterations)],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}
    print(f"machine: {machine}")
    print(f"{'size':>6} {'eval s':>8} {'+weight grads s':>16} {'ratio':>6} {'L-BFGS s/iter':>14} "
          f"{'peak RSS MiB':>13}")
    for r in rows:
        ratio = r["eval_s"] / r["eval_with_weight_grads_s"]
        print(f"{r['size']:>6} {r['eval_s']:>8.3f} {r['eval_with_weight_grads_s']:>16.3f} {ratio:>6.2f} "
              f"{r['lbfgs_iteration_s']:>14.3f} {r['peak_rss_mib']:>13.0f}")
    with open(args.json, "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
