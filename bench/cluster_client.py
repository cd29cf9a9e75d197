#!/usr/bin/env python3
"""What a cluster client (``stylize run --scheduler``) holds, counted in image-sized float32 arrays: the
figure behind ``tile_memory.CLIENT_IMAGE_COPIES``.

A whole run (one scale, a few iterations, its tiles on a `dask scheduler`
and two `dask worker` processes started here, so that the scheduler's
copies of the tasks' pixels are not in this process) on the tiny network
of the tests, whose features are small: what the client holds is then the
image's, not the network's. Python's ``tracemalloc`` (numpy reports its
arrays to it) gives the run's peak of allocated bytes above what was held
before it; less the optimizer's state (``memory.optimizer_bytes``, what the
plan counts for it), divided by one float32 array of 3 x H x W, that is the
client's count of image-sized arrays. At two or more lengths it also
fits bytes = fixed + slope x array (least squares): the slope is the count
a print-size plan wants, the fixed part (Dask's buffers, the small
network's features) being nothing there. Counts, not seconds: they survive
a contended machine.

    .venv/bin/python bench/cluster_client.py                    # 1024 and 2048 px, adam and lbfgs
    .venv/bin/python bench/cluster_client.py --lengths 1024 --optimizers adam
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1024,2048")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--optimizers", default="adam,lbfgs")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np

    import stylize
    from stylize.core.planning import memory
    from stylize.core import plugins
    from stylize.core.io.images import fit_long_side, load_image, resize
    from stylize.core.request.settings import Settings
    from tests.test_cluster import end, start_cluster
    from tests.tinynet import write_tiny_net

    folder = Path(tempfile.mkdtemp(prefix="cluster-client-"))
    prototxt, weights = write_tiny_net(folder)
    images = ROOT / "examples" / "images"
    photo, style = load_image(images / "shipwreck.jpg"), load_image(images / "the_scream.jpg")
    print(f"tiles of {args.tile_size} px, {args.iterations} iterations, 2 workers; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    address, scheduler, workers, _ = start_cluster(None, None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # `timeout` too ends the scheduler and workers (finally)
    measured: dict[str, list[tuple[int, int]]] = {}  # optimizer: [(array bytes, peak less its state)]
    try:
        print("| size | optimizer | peak above the start MiB | optimizer state MiB | image-sized arrays besides |")
        print("|---|---|---|---|---|")
        for length in (int(n) for n in args.lengths.split(",")):
            content = resize(photo, fit_long_side(photo.shape[:2], length))
            array = 3 * content.shape[0] * content.shape[1] * 4
            for name in args.optimizers.split(","):
                fields = dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                              options={"caffe": {"prototxt": prototxt, "weights": weights, "precision": "fp32"}},
                              threads=1, length=length, scales=1, iterations=args.iterations, optimizer=name,
                              tile_size=str(args.tile_size), scheduler=address)
                state = memory.optimizer_bytes(plugins.make_optimizer(Settings(**fields)), array // 4,
                                               args.iterations)
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
                result = stylize.stylize(content, style, checkpoint_every=0, **fields)
                peak = tracemalloc.get_traced_memory()[1] - before
                tracemalloc.stop()
                assert np.isfinite(result).all()
                measured.setdefault(name, []).append((array, peak - state))
                print(f"| {content.shape[1]}x{content.shape[0]} | {name} | {peak / 2**20:.0f} | {state / 2**20:.0f} | "
                      f"{(peak - state) / array:.1f} |", flush=True)
    finally:
        end(address, scheduler, workers)
    for name, points in measured.items():
        if len(points) > 1:
            slope, fixed = np.polyfit([a for a, _ in points], [b for _, b in points], 1)
            print(f"{name}: {slope:.2f} image-sized arrays besides its state, plus {fixed / 2**20:.0f} MiB fixed")


if __name__ == "__main__":
    main()
