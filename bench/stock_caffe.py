#!/usr/bin/env python3
"""stylize's Caffe build side by side with stock Caffe: seconds per objective evaluation.

Stock Caffe here is the same sdist built the same way, on the same BLAS, with
only the patches needed to build it on Debian (``BUILD_PATCHES`` of
scripts/install_pycaffe.py): it computes every weight gradient under
force_backward and lowers each convolution's whole image with im2col. It is
built once (about 5 minutes on 2 cores) into $STYLIZE_HOME/bench/stock-caffe.

Each timing runs in its own subprocess (the two builds cannot share one), and
the builds alternate round by round so that a busy spell of the machine slows
both alike; the ratio is the median of the per-round ratios. Usage:

    .venv/bin/python bench/stock_caffe.py --sizes 256 512 --rounds 5
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))
import install_pycaffe  # noqa: E402
import speed  # noqa: E402


def stock_package() -> Path:
    """A folder holding stock Caffe's ``caffe`` package (built once), importable with PYTHONPATH."""
    # Keyed like the installer's wheel: the sdist, the BLAS and the platform matter too.
    key = install_pycaffe.build_key(install_pycaffe.BUILD_PATCHES, [])
    folder = install_pycaffe.cache_dir() / "bench" / "stock-caffe" / key
    if not (folder / "caffe" / "_caffe.so").is_file():
        with install_pycaffe.built_caffe(install_pycaffe.BUILD_PATCHES, []) as prefix:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            shutil.copytree(prefix / "python" / "caffe", folder / "caffe")
    # _caffe.so finds its BLAS beside the package, as in site-packages.
    blas = folder / install_pycaffe.BLAS_MODULE
    if not blas.exists():
        blas.symlink_to(Path(importlib.import_module(install_pycaffe.BLAS_MODULE).__file__).parent)
    return folder


def seconds_per_evaluation(size: int, repeat: int, package: Path | None) -> float:
    """bench/speed.py's evaluation timing (median of ``repeat``), with stock Caffe if ``package``."""
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")])
    return speed.child("eval", "caffe-vgg19", str(size), str(repeat), "0", env=env)["eval_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two builds")
    parser.add_argument("--repeat", type=int, default=3, help="timed evaluations per child (median)")
    parser.add_argument("--json", default=str(HERE / "stock_caffe.json"))
    args = parser.parse_args()

    package = stock_package()
    rows = []
    print("| size | stylize's build s / eval | stock Caffe s / eval | ratio (median of rounds) |")
    print("|---|---|---|---|")
    for size in args.sizes:
        pairs = [(seconds_per_evaluation(size, args.repeat, None),
                  seconds_per_evaluation(size, args.repeat, package)) for _ in range(args.rounds)]
        ours, stock = [a for a, _ in pairs], [b for _, b in pairs]
        ratio = statistics.median(a / b for a, b in pairs)
        rows.append({"size": size, "ours_s": ours, "stock_s": stock, "ratio": ratio})
        print(f"| {size} | {statistics.median(ours):.2f} | {statistics.median(stock):.2f} | {ratio:.2f} |",
              flush=True)
    with open(args.json, "w") as f:
        json.dump({"rounds": args.rounds, "repeat": args.repeat, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
