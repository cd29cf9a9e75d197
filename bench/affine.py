#!/usr/bin/env python3
"""Matting Laplacian build time and memory, and the affine term's cost per evaluation.

Each size runs in a fresh subprocess so the peak resident memory is its own.
Usage: .venv/bin/python bench/affine.py --sizes 512x384 1024x768
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(width: int, height: int) -> dict:
    import numpy as np
    from skimage import data

    from stylize.core import IMAGE
    from stylize.core.images import resize
    from stylize.core.memory import peak_resident_bytes
    from stylize.losses.affine import AffineLoss

    photo = resize(data.astronaut().astype(np.float32) / 255.0, (height, width))
    before = peak_resident_bytes()
    loss = AffineLoss()
    start = time.perf_counter()
    loss.set_target({IMAGE: photo})
    build = time.perf_counter() - start
    peak = peak_resident_bytes()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        loss({IMAGE: photo})
        times.append(time.perf_counter() - start)
    return {"size": f"{width}x{height}", "build_s": build, "nonzeros": int(loss.laplacian.nnz),
            "build_peak_extra_mib": (peak - before) / 2 ** 20,
            "laplacian_mib": (loss.laplacian.data.nbytes + loss.laplacian.indices.nbytes
                              + loss.laplacian.indptr.nbytes) / 2 ** 20,
            "eval_s": sorted(times)[len(times) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["512x384", "1024x768"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*map(int, args.one.split("x")))))
        return
    print(f"{'size':>10} {'build s':>8} {'extra peak MiB':>15} {'L MiB':>7} {'eval s':>7}")
    for size in args.sizes:
        out = subprocess.run([sys.executable, __file__, "--one", size], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['size']:>10} {r['build_s']:>8.2f} {r['build_peak_extra_mib']:>15.0f} "
              f"{r['laplacian_mib']:>7.0f} {r['eval_s']:>7.3f}")


if __name__ == "__main__":
    main()
