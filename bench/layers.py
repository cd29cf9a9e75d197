#!/usr/bin/env python3
"""Where Caffe's forward + backward time goes, layer by layer: convolutions against the rest.

Issue 14, item 7: what is left in Caffe's time that is not GEMM (ReLU
backward, pooling) has to be measured before anything is changed for it.
For each size (square, the astronaut photo, --sizes), this builds the
network a default run builds (``caffe-vgg19`` with the default content +
gram layers: cut after the deepest layer a loss reads, frozen, average
pooling) and times each layer's forward and then each layer's backward on
its own, in the order a pass runs them (``net._forward(i, i)`` /
``net._backward(i, i)``: pycaffe's ``net.forward(start=name, end=name)``
and ``net.backward(...)`` without the name look-up and the output dicts,
the calls the backend itself makes). The gradient entering backward is
random (seed 0) at the last blob; the layers' cost does not depend on its
values. Each repeat times the layer-by-layer pass and then the whole
forward and the whole backward in one call each, so that a busy spell of
the shared machine slows both sides alike; figures are medians of
--repeat runs after a warm-up.

Prints, per size: each layer's forward and backward seconds; per type
(Convolution, ReLU, Pooling, other) the seconds and their share of the
layers' whole forward + backward; ReLU's backward over its forward; the
share that is not a convolution (what no GEMM speed-up reaches); the
seconds inside sgemm (the bf16 shim's clock, when it is built; it counts
fp32 calls too), so also what the convolutions spend outside GEMM
(im2col, col2im, bias); and the sum of the layers' times against the
whole pass timed in one call. Writes everything to --json. The BLAS
threads follow --threads as in a run (stylize/core/run/threads.py).

    .venv/bin/python bench/layers.py --sizes 64 --repeat 1                        # quick
    flock /tmp/stylize-bench.lock .venv/bin/python bench/layers.py --sizes 128 256 512 --repeat 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

#: The groups of the summary, in print order; every other layer type counts as "other".
GROUPS = ("Convolution", "ReLU", "Pooling")


def group_of(layer_type: str) -> str:
    return layer_type if layer_type in GROUPS else "other"


def _gemm_clock():
    """Seconds spent inside sgemm so far (the bf16 shim's counter), or None when the shim is not loaded."""
    from stylize.backends import bf16
    return (lambda: bf16.counts()["seconds"]) if bf16.library() is not None else None


def time_layers(net, repeat: int, seed: int = 0) -> dict:
    """Per-layer forward and backward seconds of a pycaffe ``net`` whose input is already set.

    Returns ``layers`` (name, type, and for forward and backward the runs,
    their median and the median seconds inside sgemm) in the net's order, and
    ``whole`` (the whole forward and the whole backward, each timed in one
    call, alternating with the layer-by-layer passes).
    """
    import numpy as np

    names, count = list(net._layer_names), len(net.layers)
    last_top = net.top_names[names[-1]][0]
    gradient = np.random.default_rng(seed).standard_normal(net.blobs[last_top].diff.shape).astype(np.float32)
    gemm = _gemm_clock()
    runs = {part: [[] for _ in range(count)] for part in ("forward", "backward")}
    gemm_runs = {part: [[] for _ in range(count)] for part in ("forward", "backward")}
    whole = {"forward": [], "backward": []}

    def timed(call, *args) -> tuple[float, float]:
        g0 = gemm() if gemm else 0.0
        t0 = time.perf_counter()
        call(*args)
        seconds = time.perf_counter() - t0
        return seconds, (gemm() - g0) if gemm else 0.0

    def layer_by_layer(record: bool) -> None:
        for i in range(count):
            seconds, in_gemm = timed(net._forward, i, i)
            if record:
                runs["forward"][i].append(seconds)
                gemm_runs["forward"][i].append(in_gemm)
        net.blobs[last_top].diff[...] = gradient
        for i in reversed(range(count)):
            seconds, in_gemm = timed(net._backward, i, i)
            if record:
                runs["backward"][i].append(seconds)
                gemm_runs["backward"][i].append(in_gemm)

    def in_one_call(record: bool) -> None:
        seconds, _ = timed(net._forward, 0, count - 1)
        net.blobs[last_top].diff[...] = gradient
        back, _ = timed(net._backward, count - 1, 0)
        if record:
            whole["forward"].append(seconds)
            whole["backward"].append(back)

    layer_by_layer(False)  # warm-up: buffers, BLAS threads
    in_one_call(False)
    for _ in range(repeat):
        layer_by_layer(True)
        in_one_call(True)
    layers = []
    for i, name in enumerate(names):
        row = {"name": name, "type": net.layers[i].type}
        for part in ("forward", "backward"):
            row[part] = {"runs": runs[part][i], "median_s": statistics.median(runs[part][i]),
                         "gemm_s": statistics.median(gemm_runs[part][i]) if gemm else None}
        layers.append(row)
    return {"layers": layers,
            "whole": {part: {"runs": whole[part], "median_s": statistics.median(whole[part])} for part in whole}}


def summarize(timing: dict) -> dict:
    """Seconds and shares per group, ReLU backward / forward, the non-convolution and non-GEMM shares."""
    layers = timing["layers"]
    total = sum(row[part]["median_s"] for row in layers for part in ("forward", "backward"))
    groups = {}
    for group in (*GROUPS, "other"):
        members = [row for row in layers if group_of(row["type"]) == group]
        forward = sum(row["forward"]["median_s"] for row in members)
        backward = sum(row["backward"]["median_s"] for row in members)
        groups[group] = {"layers": len(members), "forward_s": forward, "backward_s": backward,
                         "share": (forward + backward) / total if total else 0.0}
    relu = groups["ReLU"]
    with_gemm = all(row["forward"]["gemm_s"] is not None for row in layers)
    gemm = sum(row[part]["gemm_s"] for row in layers for part in ("forward", "backward")) if with_gemm else None
    whole = sum(timing["whole"][part]["median_s"] for part in ("forward", "backward"))
    return {"layers_total_s": total, "whole_call_s": whole, "layers_over_whole": total / whole if whole else None,
            "groups": groups, "relu_backward_over_forward": relu["backward_s"] / relu["forward_s"]
            if relu["forward_s"] else None,
            "not_convolution_share": 1.0 - groups["Convolution"]["share"],
            "gemm_s": gemm, "not_gemm_share": (1.0 - gemm / total) if gemm is not None and total else None}


def measure(size: int, repeat: int, threads: int | None, precision: str | None = None,
            name: str = "caffe-vgg19") -> dict:
    """One size: the network as a default run prepares it, timed layer by layer under the run's threads."""
    from multiscale import bench_images
    from precision import load_average
    from speed import settings_for

    from stylize.backends import bf16
    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses, make_backend
    from stylize.core.run.threads import run_threads

    content, _ = bench_images(size)
    with tempfile.TemporaryDirectory() as folder:
        settings, weights = settings_for(name, size, folder)
        if precision is not None:
            settings.options[name]["precision"] = precision
        backend_cls = plugins.load("stylize.backends", name)
        backend = make_backend(settings, build_losses(settings, backend_cls), backend_cls)
        with run_threads(threads):
            backend.forward(backend.preprocess(content), backend.layers)  # shapes the net, sets its input
            load_before, bf16_before = load_average(), bf16.counts()["bf16_calls"]
            timing = time_layers(backend.net, repeat)
            load_after, bf16_calls = load_average(), bf16.counts()["bf16_calls"] - bf16_before
    return {"backend": name, "size": size, "weights": weights, "layers_read": list(backend.layers),
            "precision": backend.precision, "bf16_gemm_calls": bf16_calls, "threads": threads,
            "load_before": load_before, "load_after": load_after,
            **timing, "summary": summarize(timing)}


def share(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def print_size(row: dict) -> None:
    summary, groups = row["summary"], row["summary"]["groups"]
    print(f"\n{row['backend']} at {row['size']} px, precision {row['precision']} "
          f"({row['bf16_gemm_calls']} GEMM calls in bf16; load {row['load_before']} -> {row['load_after']}):\n")
    print("| layer | type | forward ms | backward ms | in sgemm ms (fwd + bwd) |")
    print("|---|---|---|---|---|")
    for layer in row["layers"]:
        f, b = layer["forward"], layer["backward"]
        gemm = "n/a" if f["gemm_s"] is None else f"{1e3 * (f['gemm_s'] + b['gemm_s']):.1f}"
        print(f"| {layer['name']} | {layer['type']} | {1e3 * f['median_s']:.2f} | {1e3 * b['median_s']:.2f} "
              f"| {gemm} |")
    print()
    print("| group | layers | forward s | backward s | share of forward + backward |")
    print("|---|---|---|---|---|")
    for group, g in groups.items():
        print(f"| {group} | {g['layers']} | {g['forward_s']:.4f} | {g['backward_s']:.4f} | {share(g['share'])} |")
    print()


def print_summary(rows: list[dict]) -> None:
    print("| size | fwd + bwd s (layers summed) | in one call | Convolution | ReLU | Pooling | other "
          "| ReLU bwd / fwd | not convolution | not in sgemm |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        s, g = row["summary"], row["summary"]["groups"]
        ratio = "n/a" if s["relu_backward_over_forward"] is None else f"{s['relu_backward_over_forward']:.2f}"
        print(f"| {row['size']} | {s['layers_total_s']:.3f} | {s['whole_call_s']:.3f} | "
              f"{share(g['Convolution']['share'])} | {share(g['ReLU']['share'])} | {share(g['Pooling']['share'])} | "
              f"{share(g['other']['share'])} | {ratio} | {share(s['not_convolution_share'])} | "
              f"{share(s['not_gemm_share'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512], help="square image sizes (px)")
    parser.add_argument("--repeat", type=int, default=5, help="timed passes per size (median), after a warm-up")
    parser.add_argument("--threads", type=int, default=None,
                        help="Caffe's BLAS threads, as a run's --threads (default: every core)")
    parser.add_argument("--precision", default=None,
                        help="the backend's precision option (fp32, bf16, ...; default: the backend's default)")
    parser.add_argument("--json", default=os.path.join(HERE, "layers.json"), help="where to write the figures")
    args = parser.parse_args()
    from speed import caffe_blas_kernels, cpu_model

    machine = {"cpu_model": cpu_model(), "cores": os.cpu_count(), "caffe_blas_kernels": caffe_blas_kernels()}
    print(f"machine: {machine}; threads: {args.threads or 'default (every core)'}; repeat: {args.repeat}")
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.repeat, args.threads, args.precision))
        print_size(rows[-1])
    print_summary(rows)
    print("\nShares are of the layers' forward + backward summed; 'in one call' is _forward(0, last) + "
          "_backward(last, 0) timed whole. 'not in sgemm': everything but the time inside sgemm (the bf16 "
          "shim's clock), convolutions' im2col/col2im included.")
    with open(args.json, "w") as f:
        json.dump({"machine": machine, "threads": args.threads, "repeat": args.repeat, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
