#!/usr/bin/env python3
"""Speed and memory of every backend's objective, and of the default `stylize run`.

Table 1, for each backend and image size (square, the astronaut photo with
The Scream, the backend's default content + gram layers): seconds per
objective evaluation (one forward + backward through the layers the default
losses read, the losses included) as the median of --repeat runs after a
warm-up; the FLOPs of that forward + backward counted from the network's
layer shapes (stylize/backends/costs.py: a multiply-add is 2 FLOPs, backward
is the input gradient only); the GFLOP/s this achieves; the peak resident
memory of a process doing only that (each configuration runs in its own
subprocess so that peaks don't mix) and the backend's estimate of it
(``estimate_peak_bytes``, what `stylize run` checks against the machine).

Table 2 (--weight-grads backends): the same evaluation with the weight
gradients that stock Caffe computes under force_backward (what stylize's
Caffe patch skips), timed in the same subprocess, alternating with the
evaluation without them, as the median ratio of those --repeat pairs;
and (--lbfgs backends and sizes) the seconds per L-BFGS iteration of the real
pipeline with its peak memory against the run's estimate (optimizer state
included).

--run: the default `stylize run` (512 px, its default iterations, coarse to fine) as
a real command: wall time, peak memory, and the final objective measured at
full resolution (bench/multiscale.py's scorer).

Only caffe-vgg19 weights are installed by setup; the other backends run with
random weights of the official shapes (timing and memory do not depend on
the values; the tables say which). Prints markdown tables and writes JSON
(--json). Quick run:

    .venv/bin/python bench/speed.py --backends caffe-vgg19 --sizes 256 --repeat 1 --lbfgs 0
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKENDS = ("caffe-vgg19", "caffe-vgg16", "caffe-googlenet", "caffe-caffenet")
MIB = 2 ** 20


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def caffe_blas_kernels() -> str:
    """The kernels Caffe's OpenBLAS chose for this CPU (a generic one, e.g. Prescott, is slow)."""
    from threadpoolctl import threadpool_info

    from stylize.backends.pycaffe import import_caffe
    import_caffe()
    return ", ".join(sorted({info.get("architecture", "?") for info in threadpool_info()
                             if "scipy_openblas32" in info["filepath"]})) or "unknown"


def peak_rss_bytes() -> int:
    from stylize.core.planning.memory import peak_resident_bytes
    return peak_resident_bytes()


def wait_for_peak(process: subprocess.Popen) -> int:
    """A child's peak RSS, read from /proc until it exits (its ``ru_maxrss`` would carry ours)."""
    from stylize.core.planning.memory import peak_resident_bytes
    peak = 0
    while process.poll() is None:
        peak = max(peak, peak_resident_bytes(process.pid) or 0)
        time.sleep(0.1)
    return peak


def seconds_of(objective, x) -> float:
    start = time.perf_counter()
    objective(x)
    return time.perf_counter() - start


def timed_evaluations(objective, x, repeat: int) -> list[float]:
    objective(x)  # warm-up: allocations, BLAS thread start
    return [seconds_of(objective, x) for _ in range(repeat)]


# -- inside a child process ------------------------------------------------------------

def backend_options(name: str, layers, folder: str) -> tuple[dict, str]:
    """Backend options and a label: the installed weights, or random ones of the official shapes."""
    import numpy as np

    from stylize.backends import prototxt, zoo
    from stylize.core import plugins

    cls = plugins.load("stylize.backends", name)
    if zoo.weights_path(cls.model).is_file():
        return {}, "installed"
    text, _ = cls.network(object.__new__(cls), None)
    net = prototxt.build_net(prototxt.prepare(text, layers))
    rng = np.random.default_rng(0)
    for blobs in net.params.values():
        for blob in blobs:
            fan_in = max(1, int(np.prod(blob.data.shape[1:])))
            blob.data[...] = rng.normal(0, np.sqrt(2.0 / fan_in), blob.data.shape)
    weights = os.path.join(folder, f"{cls.model}.caffemodel")
    net.save(weights)
    del net
    return {"weights": weights}, "random"


def settings_for(name: str, size: int, folder: str, **given):
    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses
    from stylize.core.request.settings import Settings

    settings = Settings(backend=name, length=size, scales=1, **given)
    losses = build_losses(settings, plugins.load("stylize.backends", name))
    layers = sorted({layer for term in losses for layer in term.loss.layers})
    options, label = backend_options(name, layers, folder)
    if label == "random":
        os.environ["STYLIZE_HOME"] = folder  # keep the weight-shape cache out of the user's
    settings.options = {name: options}
    return settings, label


def measure_eval(name: str, size: int, repeat: int, weight_grads: bool) -> dict:
    """Table 1 (and the weight-gradient ratio of table 2) for one backend at one size."""
    from multiscale import bench_images

    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses, make_backend, make_objective

    content, style = bench_images(size)
    with tempfile.TemporaryDirectory() as folder:
        settings, label = settings_for(name, size, folder)
        backend_cls = plugins.load("stylize.backends", name)
        losses = build_losses(settings, backend_cls)
        backend = make_backend(settings, losses, backend_cls)
        cost = backend.costs_at((size, size))
        estimate = backend.estimate_peak_bytes((size, size))
        objective = make_objective(backend, losses, content, style)
        x = backend.preprocess(content)
        times = timed_evaluations(objective, x, repeat)
        peak = peak_rss_bytes()  # before anything else runs in this process
        row = {"backend": name, "size": size, "weights": label, "eval_s": statistics.median(times),
               "eval_runs": times, "forward_flops": cost.forward_flops, "backward_flops": cost.backward_flops,
               "flops": cost.flops, "gflops_per_s": cost.flops / statistics.median(times) / 1e9,
               "peak_rss_bytes": peak, "estimate_bytes": estimate,
               "caffe_activation_bytes": cost.activation_bytes(), "caffe_col_bytes": cost.col_bytes,
               "caffe_param_bytes": cost.param_bytes, "uncounted_layer_types": list(cost.uncounted)}
        if weight_grads:
            # As stock Caffe computes them under force_backward: without lr_mult
            # entries our Caffe patch has nothing to skip.
            unfrozen = backend_cls(backend.layers, frozen=False, **settings.options_for(name))
            with_grads = make_objective(unfrozen, losses, content, style)
            # Alternated, so that a busy spell of the machine slows both sides alike.
            with_grads(x)
            pairs = [(seconds_of(objective, x), seconds_of(with_grads, x)) for _ in range(repeat)]
            row.update(eval_paired_runs=[a for a, _ in pairs],
                       eval_with_weight_grads_s=statistics.median(b for _, b in pairs),
                       eval_with_weight_grads_runs=[b for _, b in pairs],
                       weight_grads_ratio=statistics.median(a / b for a, b in pairs))
    return row


def measure_lbfgs(name: str, size: int, iterations: int) -> dict:
    """Seconds per L-BFGS iteration of the real pipeline, its peak memory and the run's estimate."""
    from multiscale import bench_images

    from stylize import Job, events
    from stylize.core.planning import memory

    content, style = bench_images(size)
    os.environ[memory.LIMIT_VARIABLE] = "1T"  # the check must run (and pass) to give its estimate
    with tempfile.TemporaryDirectory() as folder:
        settings, label = settings_for(name, size, folder, iterations=iterations)
        job, stamps = Job(content, style, settings), []
        estimate = job.estimate.memory_bytes
        job.run(lambda event: stamps.append(time.perf_counter()) if isinstance(event, events.Step) else None)
    # Between the first and last iteration: excludes network set-up and targets.
    per_iteration = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)
    return {"backend": name, "size": size, "weights": label, "lbfgs_iteration_s": per_iteration,
            "lbfgs_iterations": len(stamps), "run_peak_rss_bytes": peak_rss_bytes(),
            "run_estimate_bytes": estimate}


# -- the parent ---------------------------------------------------------------------------

def child(*args: str, env: dict | None = None) -> dict:
    """One measurement in a fresh process (``env``: its environment, e.g. another pycaffe on PYTHONPATH)."""
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"bench child {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_run(length: int, iterations: int) -> dict:
    """The default `stylize run` as a command: wall time and peak memory, then its objective at full size."""
    from multiscale import full_resolution_scorer

    from stylize.core.planning import memory
    from stylize.core.io.images import load_image
    from stylize.core.io.inputs import load_inputs
    from stylize.optimizers.lbfgs import LBFGS

    content_path = os.path.join("examples", "images", "astronaut.jpg")
    style_path = os.path.join("examples", "images", "the_scream.jpg")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "out.png")
        command = [os.path.join(os.path.dirname(sys.executable), "stylize"), "run", "-c", content_path,
                   "-s", style_path, "-o", out, "-q", "--length", str(length), "--iterations", str(iterations)]
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT)
        peak = wait_for_peak(process)
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({process.returncode})")
        image = load_image(out)
    inputs = load_inputs(os.path.join(ROOT, content_path), os.path.join(ROOT, style_path), length)
    score = full_resolution_scorer(inputs.content, inputs.styles[0])
    estimate = memory.estimate_run_bytes(score.objective.backend, LBFGS(), inputs.content.shape,
                                         [inputs.styles[0].shape])
    shown = ["stylize", *command[1:]]
    shown[shown.index("-o") + 1] = "OUT.png"
    return {"command": " ".join(shown), "length": length, "iterations": iterations,
            "wall_s": seconds, "peak_rss_bytes": peak, "estimate_bytes": estimate,
            "objective_full_resolution": score(image)}


def _paired_ratio(row: dict) -> str:
    """Skipping weight gradients, as the median ratio of back-to-back evaluation pairs."""
    value = row.get("weight_grads_ratio")
    return "n/a" if value is None else f"{value:.2f}"


def mib(value) -> str:
    return "n/a" if value is None else f"{value / MIB:,.0f}"


def ratio(a, b) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def seconds(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_tables(rows: list[dict], lbfgs: list[dict], run: dict | None) -> None:
    if rows:
        print("| backend | size | weights | s / eval | GFLOP / eval (fwd + bwd) | GFLOP/s | peak RSS MiB "
              "| estimate MiB | estimate / peak |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['backend']} | {r['size']} | {r['weights']} | {r['eval_s']:.3f} | "
                  f"{r['flops'] / 1e9:.1f} | {r['gflops_per_s']:.1f} | {mib(r['peak_rss_bytes'])} | "
                  f"{mib(r['estimate_bytes'])} | {ratio(r['estimate_bytes'], r['peak_rss_bytes'])} |")
        print()
    grads = [r for r in rows if "eval_with_weight_grads_s" in r]
    if grads or lbfgs:
        by_key = {(r["backend"], r["size"]): r for r in grads}
        keys = list(dict.fromkeys([(r["backend"], r["size"]) for r in grads] +
                                  [(r["backend"], r["size"]) for r in lbfgs]))
        print("| backend | size | s / eval | with weight grads | ratio | L-BFGS s / iter | run peak RSS MiB "
              "| run estimate MiB | estimate / peak |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key in keys:
            g = by_key.get(key, {})
            for lb in [r for r in lbfgs if (r["backend"], r["size"]) == key] or [{}]:
                print(f"| {key[0]} | {key[1]} | {seconds(g.get('eval_s'))} | "
                      f"{seconds(g.get('eval_with_weight_grads_s'))} | "
                      f"{_paired_ratio(g)} | "
                      f"{seconds(lb.get('lbfgs_iteration_s'))} | {mib(lb.get('run_peak_rss_bytes'))} | "
                      f"{mib(lb.get('run_estimate_bytes'))} | "
                      f"{ratio(lb.get('run_estimate_bytes'), lb.get('run_peak_rss_bytes'))} |")
        print()
    if run:
        print(f"`{run['command']}`: {run['wall_s']:.0f} s wall, peak RSS {mib(run['peak_rss_bytes'])} MiB "
              f"(estimate {mib(run['estimate_bytes'])} MiB), final objective at full resolution "
              f"{run['objective_full_resolution']:.5g}")


def main() -> None:
    from stylize.core.request.settings import Settings  # light: no Caffe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), metavar="NAME",
                        help="backends of table 1 (none: skip it)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeat", type=int, default=3, help="timed evaluations per configuration (median)")
    parser.add_argument("--weight-grads", nargs="*", default=["caffe-vgg19"], metavar="NAME",
                        help="backends also timed with weight gradients (none: no names)")
    parser.add_argument("--lbfgs", type=int, default=12, metavar="N",
                        help="L-BFGS iterations per --lbfgs-sizes run (0: skip; >10 fills the history)")
    parser.add_argument("--lbfgs-backends", nargs="+", default=["caffe-vgg19"], metavar="NAME")
    parser.add_argument("--lbfgs-sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--run", action="store_true",
                        help="time the default `stylize run` instead (wall time, peak, full-size objective)")
    parser.add_argument("--run-length", type=int, default=512)
    parser.add_argument("--run-iterations", type=int, default=Settings.iterations)
    parser.add_argument("--json", default=os.path.join(HERE, "results.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)  # internal: one measurement
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    if args.child:
        kind, name, size, *rest = args.child
        if kind == "eval":
            result = measure_eval(name, int(size), int(rest[0]), rest[1] == "1")
        else:
            result = measure_lbfgs(name, int(size), int(rest[0]))
        print(json.dumps(result))
        return

    machine = {"cpu": platform.processor() or platform.machine(), "cpu_model": cpu_model(),
               "cores": os.cpu_count(), "caffe_blas_kernels": caffe_blas_kernels(),
               "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", ""),
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "")}
    print(f"machine: {machine}\n", flush=True)
    rows, lbfgs, run = [], [], None
    if args.run:
        run = measure_run(args.run_length, args.run_iterations)
    else:
        for name in args.backends:
            for size in args.sizes:
                rows.append(child("eval", name, str(size), str(args.repeat),
                                  "1" if name in args.weight_grads else "0"))
                print(f"  {name} {size}: {rows[-1]['eval_s']:.3f} s / eval", file=sys.stderr, flush=True)
        if args.lbfgs > 0:
            for name in args.lbfgs_backends:
                for size in args.lbfgs_sizes:
                    lbfgs.append(child("lbfgs", name, str(size), str(args.lbfgs)))
                    print(f"  {name} {size} L-BFGS: {lbfgs[-1]['lbfgs_iteration_s']:.3f} s / iteration",
                          file=sys.stderr, flush=True)
    print_tables(rows, lbfgs, run)
    if any(r["weights"] == "random" for r in rows + lbfgs):
        print("weights: 'random' = random weights of the official shapes (not installed here); "
              "speed and memory do not depend on the values.")
    if rows:
        print("FLOPs: a multiply-add counts 2; backward = gradient w.r.t. the image only (no weight gradients).")
    with open(args.json, "w") as f:
        json.dump({"machine": machine, "repeat": args.repeat, "rows": rows, "lbfgs": lbfgs, "run": run}, f,
                  indent=2)


if __name__ == "__main__":
    main()
