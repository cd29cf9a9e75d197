"""Where an iteration's time goes, at each size: Caffe forward, Caffe backward, losses, the rest.

    .venv/bin/python bench/iteration.py                      # 128, 256, 512 px, VGG19, 12 iterations each
    .venv/bin/python bench/iteration.py --sizes 128 --iterations 20 --threads 1

Each size runs single-scale through the public Job API in a fresh process,
under cProfile; the split, per objective evaluation, charges the backend's
forward and backward (Caffe), the loss plugins, the rest of the objective
(summing gradients, the image conversion) and what happens outside it
(L-BFGS, copies, events) separately. Seconds per iteration come from the
Step events between the third and the last iteration (the first ones also
build targets and buffers). Per pixel, a fixed cost per iteration shows as a
128 px iteration costing more than 1/16 of a 512 px one: the last column is
each size's seconds per megapixel relative to the largest size's.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time

def measure(size: int, iterations: int, threads: int | None) -> dict:
    sys.path.insert(0, os.path.dirname(__file__))
    from multiscale import bench_images

    from stylize import Job, events

    content, style = bench_images(size)
    job = Job(content, style, length=size, iterations=iterations, scales=1, threads=threads, checkpoint_every=0)
    job.estimate  # the network is loaded outside the profile
    stamps = []
    profile = cProfile.Profile()
    profile.enable()
    job.run(lambda event: stamps.append(time.perf_counter()) if isinstance(event, events.Step) else None)
    profile.disable()
    stats = pstats.Stats(profile).stats

    def cumulative(path_part: str, function: str) -> tuple[int, float]:
        rows = [row for (filename, _, name), row in stats.items() if name == function and path_part in filename]
        return sum(row[1] for row in rows), sum(row[3] for row in rows)

    _, total = cumulative(f"core{os.sep}job.py", "run")
    evaluations, objective = cumulative(f"core{os.sep}objective.py", "__call__")
    calls, forward = cumulative(f"backends{os.sep}caffe_net.py", "forward")
    split = {"forward": forward / max(1, calls) * evaluations,  # a level's targets take forward passes too
             "backward": cumulative(f"backends{os.sep}caffe_net.py", "backward")[1],
             "losses": cumulative(f"{os.sep}losses{os.sep}", "__call__")[1]}
    split["objective_other"] = objective - sum(split.values())
    split["outside_objective"] = total - objective
    per_iteration = (stamps[-1] - stamps[2]) / max(1, len(stamps) - 3)
    return {"size": size, "iterations": len(stamps), "evaluations": evaluations,
            "iteration_s": per_iteration, "profiled_s": total,
            "per_evaluation_s": {part: seconds / max(1, evaluations) for part, seconds in split.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="--threads of the runs (default: all cores)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--json", default="bench/iteration.json")
    args = parser.parse_args()
    if args.child:
        size, iterations, threads = args.child
        print(json.dumps(measure(int(size), int(iterations), None if threads == "-" else int(threads))))
        return
    rows = []
    for size in args.sizes:
        done = subprocess.run([sys.executable, __file__, "--child", str(size), str(args.iterations),
                               "-" if args.threads is None else str(args.threads)],
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    largest = rows[-1]
    reference = largest["iteration_s"] / largest["size"] ** 2
    print("| size | s / iteration | per evaluation: forward | backward | losses | rest of the objective | "
          f"outside it (L-BFGS, events) | s per pixel vs {largest['size']} px |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        part = row["per_evaluation_s"]
        relative = row["iteration_s"] / row["size"] ** 2 / reference
        print(f"| {row['size']} | {row['iteration_s']:.3f} | {part['forward']:.3f} | {part['backward']:.3f} | "
              f"{part['losses']:.3f} | {part['objective_other']:.3f} | {part['outside_objective']:.3f} | "
              f"{relative:.2f}x |")
    with open(args.json, "w") as f:
        json.dump({"threads": args.threads, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
