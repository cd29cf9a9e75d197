#!/usr/bin/env python3
"""Matting Laplacian: stylize's build against the former one and pymatting's, in time, memory and per evaluation.

Three builds of the same matrix (Levin et al.'s, 3x3 windows, epsilon 1e-7):

- ``bands``: stylize's (``stylize.losses.affine.matting_laplacian``): 25 float32 diagonals
  (``scipy.sparse.dia_matrix``), built in blocks of window rows;
- ``coo``: the build stylize had before (kept below as the reference): every window's 9x9 block
  at once in float64, a COO matrix summed into CSR;
- ``pymatting``: ``pymatting.cf_laplacian`` (1.1.16, compiled by numba; CSR with float64 values and
  int64 indices, 25 per row). Measured only where pymatting imports (it is not a dependency:
  ``pip install pymatting==1.1.16`` into another folder and put it on PYTHONPATH).

Each (build, size) runs in a fresh subprocess so that its peak resident memory (VmHWM) is its
own; the build's extra peak is VmHWM after the build minus the resident memory before it.
``eval s`` is the affine term's value and gradient with that matrix (median of 5).
``--compare`` checks that the three matrices agree on a small image; ``--jit`` times importing
pymatting (numba) and its first call with an empty and with a warm numba cache.
Usage: .venv/bin/python bench/affine.py --sizes 512 1024 2048 [--kinds bands coo pymatting]
(heavy: run it under ``flock /tmp/stylize-bench.lock``; 2048 px with ``coo`` peaks near 7 GiB).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

KINDS = ("bands", "coo", "pymatting")


def coo_laplacian(image, epsilon: float = 1e-7):
    """The build stylize had before the banded one: all windows at once, float64, COO -> CSR."""
    import numpy as np
    import scipy.sparse

    h, w, _ = image.shape
    image = image.astype(np.float64)
    n = 9
    index = np.arange(h * w, dtype=np.int32).reshape(h, w)
    windows = np.lib.stride_tricks.sliding_window_view(index, (3, 3)).reshape(-1, n)
    colours = image.reshape(-1, 3)[windows]
    mean = colours.mean(axis=1, keepdims=True)
    centred = colours - mean
    covariance = np.einsum("kic,kid->kcd", centred, centred) / n
    inverse = np.linalg.inv(covariance + (epsilon / n) * np.eye(3))
    affinity = (1.0 + np.einsum("kic,kcd,kjd->kij", centred, inverse, centred)) / n
    values = (np.eye(n)[None] - affinity).astype(np.float32)
    rows = np.repeat(windows, n, axis=1).ravel()
    cols = np.tile(windows, (1, n)).ravel()
    del colours, centred, affinity
    laplacian = scipy.sparse.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w))
    return laplacian.tocsr()


def build(kind: str, image):
    import numpy as np
    if kind == "bands":
        from stylize.losses.affine import matting_laplacian
        return matting_laplacian(image)
    if kind == "coo":
        return coo_laplacian(image)
    from pymatting import cf_laplacian
    return cf_laplacian(np.ascontiguousarray(image, np.float64), epsilon=1e-7, radius=1)


def photo(length: int):
    import numpy as np
    from skimage import data

    from stylize.core.io.images import resize
    return resize(data.astronaut().astype(np.float32) / 255.0, (length * 3 // 4, length))


def matrix_bytes(matrix) -> int:
    return sum(getattr(matrix, name).nbytes for name in ("data", "indices", "indptr", "offsets")
               if hasattr(matrix, name))


def measure(kind: str, length: int) -> dict:
    from stylize.core import IMAGE
    from stylize.core.planning.memory import peak_resident_bytes, resident_bytes
    from stylize.losses.affine import AffineLoss

    image = photo(length)
    if kind == "pymatting":
        build("pymatting", image[:8, :8])  # compile (or load from numba's cache) outside the timing
    before = resident_bytes()
    start = time.perf_counter()
    matrix = build(kind, image)
    seconds = time.perf_counter() - start
    built = peak_resident_bytes()
    loss = AffineLoss()
    loss.laplacian = matrix
    times = []
    for _ in range(5):
        start = time.perf_counter()
        loss({IMAGE: image})
        times.append(time.perf_counter() - start)
    return {"kind": kind, "size": f"{image.shape[1]}x{image.shape[0]}", "build_s": seconds,
            "build_extra_mib": (built - before) / 2 ** 20, "peak_mib": peak_resident_bytes() / 2 ** 20,
            "estimate_mib": loss.memory_bytes(image.shape) / 2 ** 20 if kind == "bands" else None,
            "matrix_mib": matrix_bytes(matrix) / 2 ** 20, "stored": int(matrix.data.size),
            "eval_s": sorted(times)[len(times) // 2]}


def compare(length: int) -> None:
    """Largest entry difference between the builds, and the affine term's value with each."""
    import numpy as np
    image = photo(length).astype(np.float64)
    kinds = [k for k in KINDS if k != "pymatting" or _has_pymatting()]
    matrices = {k: build(k, image).tocsr() for k in kinds}
    rng = np.random.default_rng(0)
    v = np.clip(image + rng.normal(0, 0.05, image.shape), 0, 1).reshape(-1, 3)
    largest = max(abs(m).max() for m in matrices.values())
    print(f"{image.shape[1]}x{image.shape[0]} px: largest entry {largest:.3f}")
    for k, m in matrices.items():
        value = float(np.einsum("ic,ic->", v, m @ v))
        diff = abs(m - matrices["bands"]).max()
        print(f"  {k:>9}: affine value {value:.6f}, largest |entry - bands'| {diff:.2e}")


def _has_pymatting() -> bool:
    import importlib.util
    return importlib.util.find_spec("pymatting") is not None


def jit() -> None:
    """Seconds to import pymatting (and numba) and for its first call, cold and warm numba cache."""
    code = ("import time; t = time.perf_counter(); import numpy as np; from pymatting import cf_laplacian; "
            "i = time.perf_counter() - t; t = time.perf_counter(); cf_laplacian(np.random.rand(8, 8, 3)); "
            "print(i, time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty numba cache", "warm numba cache"):
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
            imported, first = map(float, out.stdout.split())
            print(f"pymatting, {label}: import {imported:.2f} s, first call {first:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024], help="long sides (4:3 images)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--compare", type=int, metavar="LENGTH", help="check the builds agree at this long side")
    parser.add_argument("--jit", action="store_true", help="time pymatting's import and numba compilation")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores shared)")
    if args.compare:
        compare(args.compare)
    if args.jit and _has_pymatting():
        jit()
    kinds = [k for k in args.kinds if k != "pymatting" or _has_pymatting()]
    print(f"{'build':>9} {'size':>9} {'build s':>8} {'build extra MiB':>15} {'peak MiB':>9} {'estimate':>9} "
          f"{'L MiB':>7} {'stored':>10} {'eval s':>7}")
    for length in args.sizes:
        for kind in kinds:
            out = subprocess.run([sys.executable, __file__, "--one", kind, str(length)], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            estimate = "" if r["estimate_mib"] is None else f"{r['estimate_mib']:.0f}"
            print(f"{r['kind']:>9} {r['size']:>9} {r['build_s']:>8.2f} {r['build_extra_mib']:>15.0f} "
                  f"{r['peak_mib']:>9.0f} {estimate:>9} {r['matrix_mib']:>7.0f} {r['stored']:>10} "
                  f"{r['eval_s']:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
