#!/usr/bin/env python3
"""The GPU checks of the CUDA build of pycaffe, in one go (bench/gpu.sh runs this on a GPU machine).

In order, each in a fresh process (Caffe's GPU state and the TF32 switch,
an environment variable read when cuBLAS starts, do not carry over):

1. grad: the objective's gradient checks, tests/test_objective.py (backend +
   content + gram against central differences: the tests' tiny smooth
   network and VGG19 on a 48x40 crop, with the tests' tolerances), run by
   pytest with the backends on the GPU (STYLIZE_TEST_GPU).
2. agree: VGG19 at 256 px on the GPU and on the CPU in one process: the
   relative L2 difference of every feature the default losses read and of
   the objective's gradient (fp32; also with TF32 in its own process).
3. eval: seconds per objective evaluation (forward + backward + the default
   losses, median of --repeat after a warm-up) at 512 and 1024 px, fp32 and TF32.
4. run: the default `stylize run` (512 px, its default iterations, coarse to fine) as
   a command: wall time.
5. lbfgs: --iterations L-BFGS iterations at 512 px in one level (--scales 1)
   through the Job API: wall time from the first to the last iteration, the
   run's wall time and its final objective (fp32, then TF32 if the budget allows).

Prints each figure as it comes and a table at the end; writes JSON (--json).
Every step checks the time left (--budget seconds) and is skipped, said so,
when it would not fit. A dry run on a machine without a GPU exercises the
same code on the CPU: ``python bench/gpu.py --gpu -1 --quick``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND = "caffe-vgg19"


def relative(a, b) -> float:
    import numpy as np
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


# -- children ---------------------------------------------------------------------------

def child_grad(gpu: int) -> dict:
    """The objective's gradient checks (tests/test_objective.py) with the backends on ``gpu``."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_objective.py"],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, STYLIZE_TEST_GPU=str(gpu)))
    lines = done.stdout.strip().splitlines()
    return {"ok": done.returncode == 0, "summary": lines[-1] if lines else done.stderr.strip()[-300:],
            "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))]}


def child_agree(gpu: int, size: int) -> dict:
    """VGG19 features and objective gradient on ``gpu`` against the CPU, at ``size`` px."""
    from multiscale import bench_images

    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses, make_backend, make_objective
    from stylize.core.request.settings import Settings

    content, style = bench_images(size)
    out = {}
    for device in (gpu, -1):
        settings = Settings(backend=BACKEND, length=size, scales=1, gpu=device)
        losses = build_losses(settings, plugins.load("stylize.backends", BACKEND))
        backend = make_backend(settings, losses)
        objective = make_objective(backend, losses, content, style)
        x = backend.preprocess(content)
        features = {k: v.copy() for k, v in backend.forward(x, backend.layers).items()}
        value, grad = objective(x)
        out[device] = (features, float(value), grad.copy())
        del objective, backend
    (f_gpu, v_gpu, g_gpu), (f_cpu, v_cpu, g_cpu) = out[gpu], out[-1]
    return {"size": size, "features": {k: relative(f_gpu[k], f_cpu[k]) for k in sorted(f_cpu)},
            "objective": abs(v_gpu - v_cpu) / abs(v_cpu), "gradient": relative(g_gpu, g_cpu)}


def child_eval(gpu: int, size: int, repeat: int) -> dict:
    """Seconds per objective evaluation at ``size`` px on ``gpu`` (median of ``repeat``)."""
    from multiscale import bench_images
    from speed import settings_for, timed_evaluations

    from stylize.core import plugins
    from stylize.core.evaluation.objective import build_losses, make_backend, make_objective

    content, style = bench_images(size)
    with tempfile.TemporaryDirectory() as folder:
        settings, label = settings_for(BACKEND, size, folder, gpu=gpu)
        losses = build_losses(settings, plugins.load("stylize.backends", BACKEND))
        backend = make_backend(settings, losses)
        objective = make_objective(backend, losses, content, style)
        times = timed_evaluations(objective, backend.preprocess(content), repeat)
    return {"size": size, "eval_s": statistics.median(times), "runs": times, "weights": label}


def child_lbfgs(gpu: int, size: int, iterations: int) -> dict:
    """``iterations`` L-BFGS iterations at ``size`` px in one level through the Job API."""
    from multiscale import bench_images
    from speed import settings_for

    from stylize import Job, events

    content, style = bench_images(size)
    stamps, finished = [], []
    with tempfile.TemporaryDirectory() as folder:
        settings, label = settings_for(BACKEND, size, folder, iterations=iterations, gpu=gpu)
        job = Job(content, style, settings)
        start = time.perf_counter()

        def on_event(event):
            if isinstance(event, events.Step):
                stamps.append((time.perf_counter(), event.loss))
            elif isinstance(event, events.Finished):
                finished.append(time.perf_counter())
        job.run(on_event)
    return {"size": size, "iterations": len(stamps), "wall_s": finished[0] - start,
            "iterations_s": stamps[-1][0] - stamps[0][0] if len(stamps) > 1 else 0.0,
            "per_iteration_s": (stamps[-1][0] - stamps[0][0]) / max(1, len(stamps) - 1),
            "final_loss": float(stamps[-1][1]), "weights": label}


def child_run(gpu: int, length: int, iterations: int) -> dict:
    """The default `stylize run` as a command, at ``length`` px: wall time."""
    stylize = os.path.join(os.path.dirname(sys.executable), "stylize")
    command = [stylize if os.path.exists(stylize) else "stylize", "run", "-c",
               os.path.join(ROOT, "examples", "images", "astronaut.jpg"), "-s",
               os.path.join(ROOT, "examples", "images", "the_scream.jpg"), "-q", "--force",
               "--length", str(length), "--iterations", str(iterations), "--gpu", str(gpu)]
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(command + ["-o", os.path.join(folder, "out.png")], capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"length": length, "iterations": iterations, "wall_s": seconds, "command": " ".join(["stylize", *command[1:]])}


CHILDREN = {"grad": child_grad, "agree": child_agree, "eval": child_eval, "lbfgs": child_lbfgs,
            "run": child_run}


# -- the parent ---------------------------------------------------------------------------

def child(kind: str, *args, tf32: bool = False, timeout: float) -> dict:
    env = dict(os.environ, STYLIZE_CUDA_TF32="1" if tf32 else "0")
    try:
        done = subprocess.run([sys.executable, __file__, "--child", kind, *map(str, args)],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-1500:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    info = {"python": sys.version.split()[0], "cores": os.cpu_count()}
    try:
        info["gpu"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["gpu"] = "none (nvidia-smi not found)"
    return info


def main() -> None:
    from stylize.core.request.settings import Settings  # light: no Caffe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", type=int, default=0, help="the GPU (-1: a dry run on the CPU)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="eval sizes")
    parser.add_argument("--agree-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=500, help="L-BFGS iterations at --lbfgs-size")
    parser.add_argument("--lbfgs-size", type=int, default=512)
    parser.add_argument("--run-length", type=int, default=512, help="length of the default run")
    parser.add_argument("--run-iterations", type=int, default=Settings.iterations, help="its iterations (the default)")
    parser.add_argument("--budget", type=float, default=480, help="seconds for everything")
    parser.add_argument("--quick", action="store_true",
                        help="a dry run's sizes: eval at 128, agree at 64, 5 L-BFGS iterations at 128, "
                             "a run of 20 iterations at 64 px")
    parser.add_argument("--json", default=os.path.join(HERE, "gpu.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    if args.child:
        kind, *rest = args.child
        print(json.dumps(CHILDREN[kind](*map(int, rest))))
        return
    if args.quick:
        args.sizes, args.agree_size, args.iterations, args.lbfgs_size = [128], 64, 5, 128
        args.run_length, args.run_iterations = 64, 20
    deadline = time.monotonic() + args.budget
    results = {"machine": machine(), "gpu": args.gpu, "steps": []}
    print(f"machine: {results['machine']}", flush=True)
    g = args.gpu
    plan = [("grad", (g,), False), ("agree", (g, args.agree_size), False), ("agree", (g, args.agree_size), True)]
    plan += [("eval", (g, size, args.repeat), tf32) for size in args.sizes for tf32 in (False, True)]
    plan += [("run", (g, args.run_length, args.run_iterations), False), ("lbfgs", (g, args.lbfgs_size, args.iterations), False),
             ("lbfgs", (g, args.lbfgs_size, args.iterations), True)]
    for kind, step_args, tf32 in plan:
        left = deadline - time.monotonic()
        label = f"{kind} {step_args[1]} px{' tf32' if tf32 else ''}" if len(step_args) > 1 else kind
        if left < 10:
            print(f"{label}: skipped (budget spent)", flush=True)
            results["steps"].append({"step": label, "skipped": True})
            continue
        start = time.monotonic()
        result = child(kind, *step_args, tf32=tf32, timeout=left)
        result.update(step=label, seconds=time.monotonic() - start)
        results["steps"].append(result)
        print(f"{label}: {json.dumps(result)}", flush=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print_summary(results)


def print_summary(results: dict) -> None:
    print("\n| step | result |\n|---|---|")
    for step in results["steps"]:
        label = step["step"]
        if step.get("skipped") or "error" in step:
            text = "skipped" if step.get("skipped") else f"FAILED: {step['error'][-300:]}"
        elif label.startswith("grad"):
            text = f"{'ok' if step['ok'] else 'FAILED'}: {step['summary']}"
        elif label.startswith("agree"):
            text = (f"features max rel. diff {max(step['features'].values()):.1e}, objective "
                    f"{step['objective']:.1e}, gradient {step['gradient']:.1e}")
        elif label.startswith("eval"):
            text = f"{step['eval_s'] * 1000:.1f} ms / evaluation"
        elif label.startswith("lbfgs"):
            text = (f"{step['iterations']} iterations: {step['iterations_s']:.1f} s "
                    f"({step['per_iteration_s'] * 1000:.1f} ms each), run {step['wall_s']:.1f} s, "
                    f"final objective {step['final_loss']:.4g}")
        else:
            text = f"{step['wall_s']:.1f} s"
        print(f"| {label} | {text} |")


if __name__ == "__main__":
    main()
