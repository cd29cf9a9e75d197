"""Eight small VGG19 jobs three ways: `stylize batch` on 2 one-thread workers, on 1 two-thread worker,
and eight sequential `stylize run` calls; the wall time of each, measured in one run.

    .venv/bin/python bench/batch.py                 # 4 photos x 2 paintings, 128 px, 30 iterations
    .venv/bin/python bench/batch.py --length 192 --iterations 50 --json out/batch-bench.json

Every way runs the real commands in subprocesses, from nothing (a fresh
output folder, so no job is skipped), and includes what a user waits for:
starting the local cluster, planning, loading the network in every job.
The photos are scikit-image's (astronaut, chelsea, coffee, rocket), the
paintings the two in examples/images.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STYLIZE = str(Path(sys.executable).parent / "stylize")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PAINTINGS = (ROOT / "examples/images/the_scream.jpg", ROOT / "examples/images/shipwreck.jpg")


def photos(folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.png"
        Image.fromarray(getattr(data, name)()).save(path)
        paths.append(path)
    return paths


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def load() -> float:
    """The 1-minute load average: on a shared machine, what else was running meanwhile."""
    return os.getloadavg()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures there")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="stylize-batch-bench-"))
    try:
        contents = photos(work)
        common = ["-l", str(args.length), "-n", str(args.iterations), "--seed", "1"]
        batch = [STYLIZE, "batch", "-c", str(work / "*.png"), *sum((["-s", str(p)] for p in PAINTINGS), []),
                 *common, "-q"]
        ways = {
            "stylize batch, 2 workers x 1 thread": batch + ["-o", str(work / "two/{content}-{style}.png"),
                                                            "--workers", "2", "--threads", "1"],
            "stylize batch, 1 worker x 2 threads": batch + ["-o", str(work / "one/{content}-{style}.png"),
                                                            "--workers", "1", "--threads", str(cores)],
        }
        seconds, loads = {}, {}
        for name, command in ways.items():
            seconds[name] = timed(command)
            loads[name] = load()
        start = time.perf_counter()
        for content in contents:
            for painting in PAINTINGS:
                timed([STYLIZE, "run", "-c", str(content), "-s", str(painting), *common, "--threads", str(cores),
                       "-o", str(work / f"runs/{content.stem}-{painting.stem}.png"), "-q"])
        name = f"{len(contents) * len(PAINTINGS)} sequential stylize run, {cores} threads"
        seconds[name], loads[name] = time.perf_counter() - start, load()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    jobs = len(contents) * len(PAINTINGS)
    sequential = list(seconds.values())[-1]
    print(f"{jobs} jobs, VGG19, {args.length} px, {args.iterations} iterations, {cores} cores\n")
    print("| way | wall s | s / job | vs sequential runs | load average after |")
    print("|---|---|---|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {value / jobs:.1f} | {sequential / value:.2f}x | {loads[name]:.1f} |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"jobs": jobs, "length": args.length, "iterations": args.iterations,
                                         "cores": cores, "seconds": seconds, "load_average": loads}, indent=2) + "\n")


if __name__ == "__main__":
    main()
