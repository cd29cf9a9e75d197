#!/usr/bin/env python3
"""One picture's tiles on Dask workers (``stylize run --scheduler``): seconds, CPU seconds and bytes per
evaluation against the single-process tiled evaluation, and a projection to more workers.

The shipwreck photo styled by *The Scream* (VGG19 in fp32, content + gram,
tiles of ``--tile-size``), one objective evaluation per row after the
workers have loaded the network: the single-process tiled objective
(``--threads`` BLAS threads), then a LocalCluster of 1, 2 ... worker
processes of 1 thread each. Each row: wall seconds; CPU seconds of the
client and of the workers (figures that survive a contended machine);
bytes per evaluation as the protocol counts them; peak resident memory
(VmHWM) of the client and the largest worker's. The projection takes
the 1-worker row's worker CPU seconds per tile, its bytes and the client's
CPU share, and prints the model with its inputs:

    T(N) = client + ceil(T / N) * tile + (pixels + gradients + T * statistics + N * totals) / link

for N workers at this size (T tiles, at least N of them: more workers than
tiles means smaller tiles, their halo overhead not counted).

    .venv/bin/python bench/cluster_eval.py                          # 2048 px, 1 and 2 workers
    .venv/bin/python bench/cluster_eval.py --length 1024 --workers 1,2
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # this file is not the distributed package
IMAGES = os.path.join(os.path.dirname(HERE), "examples", "images")


def peak() -> int:
    """This process's peak resident memory (VmHWM), bytes."""
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))


def worker_clock() -> tuple[float, int]:
    return time.process_time(), peak()


def warm(dask_worker, key: str) -> None:
    """Load the network and the level on this worker (as its first task would)."""
    from stylize.cluster import worker
    worker._objective(dask_worker.data[key])


def timed(objective, x) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    objective(x)
    return {"wall": time.perf_counter() - wall, "client_cpu": time.process_time() - cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--workers", default="1,2", help="worker counts of the LocalCluster rows")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads of the single-process row")
    parser.add_argument("--project", default="4,16,64", help="worker counts of the projection")
    parser.add_argument("--gbit", type=float, default=10.0, help="the client's link, Gbit/s")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the workers' (the local row sets its own threads)

    import numpy as np
    from distributed import Client, LocalCluster

    from stylize.cluster.objective import ClusterObjective
    from stylize.core import plugins
    from stylize.core.io.images import fit_long_side, load_image, resize
    from stylize.core.evaluation.objective import build_losses, make_backend
    from stylize.core.request.settings import Settings
    from stylize.core.evaluation.tiled_objective import make_tiled_objective
    from stylize.core.evaluation.tiling import make_tiles

    print(f"load average at the start: {os.getloadavg()[0]:.1f}", flush=True)
    content = load_image(os.path.join(IMAGES, "shipwreck.jpg"))
    content = resize(content, fit_long_side(content.shape[:2], args.length))
    style = load_image(os.path.join(IMAGES, "the_scream.jpg"))
    style = resize(style, fit_long_side(style.shape[:2], args.length))
    settings = Settings(options={"caffe-vgg19": {"precision": "fp32"}}, threads=args.threads)
    losses = build_losses(settings, plugins.load("stylize.backends", settings.backend))
    backend = make_backend(settings, losses)
    tiles = make_tiles(backend.tiling(sorted({l for t in losses for l in t.loss.layers})), args.tile_size)
    start = time.perf_counter()
    local = make_tiled_objective(backend, losses, content, style, tiles)
    print(f"{content.shape[1]}x{content.shape[0]} px, {local.grid.describe()}; targets {time.perf_counter() - start:.0f} s",
          flush=True)
    x = backend.preprocess(content)
    rows = [{"name": f"1 process, {args.threads} threads", "tiles": len(local.runner.tiles), **timed(local, x),
             "peak_client": peak()}]
    rows[0]["worker_cpu"] = 0.0
    print(rows[-1], flush=True)
    worker_settings = Settings(options=settings.options, threads=1)
    for n in [int(n) for n in args.workers.split(",")]:
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          memory_limit=0, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            remote = ClusterObjective(local, client, worker_settings)
            client.run(warm, key=remote.spec.key)
            before = client.run(worker_clock)
            row = {"name": f"{n} worker{'s' if n > 1 else ''}, 1 thread each", "tiles": len(local.runner.tiles),
                   **timed(remote, x)}
            after = client.run(worker_clock)
            row["worker_cpu"] = sum(after[w][0] - before[w][0] for w in after)
            row["slowest_worker_cpu"] = max(after[w][0] - before[w][0] for w in after)
            row["peak_worker"] = max(after[w][1] for w in after)
            row["peak_client"] = peak()
            row["bytes"] = remote.traffic.per_evaluation()
            row["setup_bytes"] = remote.setup_bytes
            rows.append(row)
            print(row, flush=True)
    report(rows, args)


def report(rows: list[dict], args) -> None:
    load = os.getloadavg()[0]
    print(f"\nContended machine ({os.cpu_count()} cores, load average {load:.1f} while measuring).\n")
    print("| run | tiles | wall s | client CPU s | workers' CPU s | slowest worker CPU s | MB per evaluation "
          "| client peak MiB | worker peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mb = sum(r.get("bytes", {}).values()) / 1e6
        print(f"| {r['name']} | {r['tiles']} | {r['wall']:.1f} | {r['client_cpu']:.1f} | {r['worker_cpu']:.1f} | "
              f"{r.get('slowest_worker_cpu', 0):.1f} | {mb:.1f} | {r['peak_client'] / 2**20:.0f} | "
              f"{r.get('peak_worker', 0) / 2**20:.0f} |")
    for r in rows[1:]:
        ideal = r["slowest_worker_cpu"] + r["client_cpu"]  # the slower worker's tile seconds plus the client's
        print(f"{r['name']}: wall {r['wall']:.1f} s against the ideal {ideal:.1f} s (slowest worker CPU + client "
              f"CPU): {r['wall'] / ideal:.2f}x; all processes' CPU {r['worker_cpu'] + r['client_cpu']:.1f} s "
              f"against the single process's {rows[0]['client_cpu']:.1f} s")
    one = next((r for r in rows if r.get("bytes") and r["name"].startswith("1 worker")), None)
    if one is None:
        return
    print("\nBytes per evaluation by message (1 worker): " +
          ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in one["bytes"].items()) +
          f"; once per level: {one['setup_bytes'] / 1e6:.1f} MB per worker (the level's losses and targets)")
    tiles, link = one["tiles"], args.gbit * 1e9 / 8
    tile = one["worker_cpu"] / tiles
    client = one["client_cpu"]
    flows = one["bytes"]
    pixels = flows.get("out: pixels", 0) + flows.get("in: gradients", 0)  # the same however it is cut
    stats = flows.get("in: statistics", 0) / tiles  # one set per tile, whatever its size
    totals = flows.get("out: totals", 0)
    print(f"\nProjection at this size: client {client:.2f} s (CPU), tile {tile:.2f} s (worker CPU, both rounds), "
          f"pixels and gradients {pixels / 1e6:.1f} MB, statistics {stats / 1e6:.2f} MB per tile, totals "
          f"{totals / 1e6:.2f} MB per worker, link {args.gbit:g} Gbit/s")
    print("| workers | tiles | seconds per evaluation | of which network |")
    print("|---|---|---|---|")
    for n in [int(n) for n in args.project.split(",")]:
        count = max(tiles, n)
        work = one["worker_cpu"] / count  # the same work in more, smaller tiles
        network = (pixels + count * stats + n * totals) / link
        seconds = client + math.ceil(count / n) * work + network
        print(f"| {n} | {count} | {seconds:.2f} | {network:.2f} |")


if __name__ == "__main__":
    main()
