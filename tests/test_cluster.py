"""One picture's tiles on a real `dask scheduler` and two `dask worker` processes: equal to the local tiled
evaluation and run, a worker SIGKILLed mid-run, a worker of another stylize version refused by name."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylize
from stylize.backends.caffe_net import CaffeBackend
from stylize.cluster import objective as cluster
from stylize.core.errors import StylizeError
from stylize.core.events import Step
from stylize.core.objective import WeightedLoss
from stylize.core.settings import Settings
from stylize.core.tiled_objective import add_statistics, make_tiled_objective
from stylize.core.tiling import make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.losses.tv import TotalVariationLoss

from .test_batch_cluster import free_port, start, wait_for_line
from .test_tiling import LAYERS, files, images, run_cli  # noqa: F401 (files: a fixture)

DASK = str(Path(sys.executable).parent / "dask")


def start_worker(address: str, *preload: str, env: dict | None = None):
    """A `dask worker` process (1 thread, no nanny: SIGKILL ends it for good) joining ``address``, running
    the ``preload`` scripts as it starts; wait for it with ``joined``."""
    command = [DASK, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
               "--no-dashboard", "--no-nanny", *(f"--preload={path}" for path in preload)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, **(env or {})})


def joined(worker) -> str:
    """The address of a worker from ``start_worker``, once the scheduler has it."""
    address = wait_for_line(worker, r"Start worker at:\s+(tcp://\S+)").group(1)
    wait_for_line(worker, r"Registered to:")
    return address


def kill(proc) -> None:
    """SIGKILL a test's process group: nothing of theirs needs a clean exit, and it takes no time."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def dask_cluster():
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1: (address, [worker processes])."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start(DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                      "--no-dashboard")
    workers = []
    try:
        wait_for_line(scheduler, r"Scheduler at:\s+tcp://")
        workers = [start_worker(address, env={"OMP_NUM_THREADS": "1"}) for _ in range(2)]
        for worker in workers:
            joined(worker)
        yield address, workers
    finally:
        cluster.disconnect(address)
        for proc in (*workers, scheduler):
            kill(proc)


def losses():
    return [WeightedLoss("content", ContentLoss(["conv2"]), 1.0), WeightedLoss("gram", GramLoss(LAYERS), 1e4),
            WeightedLoss("tv", TotalVariationLoss(()), 10.0)]


def test_a_distributed_evaluation_equals_the_local_tiled_one(dask_cluster, tiny_net):
    address, _ = dask_cluster
    prototxt, weights = tiny_net
    backend = CaffeBackend(LAYERS, prototxt=prototxt, weights=weights, precision="fp32")
    content, styles, start_image = images()
    tiles = make_tiles(backend.tiling(LAYERS), 12)
    x = backend.preprocess(start_image)
    local = make_tiled_objective(backend, losses(), content, styles, tiles)
    value, grad = local(x)
    grad = grad.copy()
    settings = Settings(backend="caffe", options={"caffe": {"prototxt": prototxt, "weights": weights,
                                                            "precision": "fp32"}}, scheduler=address)
    remote = cluster.make_cluster_objective(backend, losses(), content, styles, tiles, settings)
    for _ in range(2):  # the second evaluation finds the network and the level on the workers
        remote_value, remote_grad = remote(x)
        assert remote_value == pytest.approx(value, rel=1e-6)
        assert remote.terms == pytest.approx(local.terms, rel=1e-6)
        np.testing.assert_allclose(remote_grad, grad, rtol=1e-5, atol=1e-6 * np.abs(grad).max())
    # The protocol's bytes: every tile's span twice out, its gradient once back, the totals once per worker.
    spans = sum(h * w for h, w in (tile.span_shape for tile in remote.grid.tiles())) * 3 * 4
    per = remote.traffic.per_evaluation()
    assert remote.grid.counts == (4, 6) and remote.traffic.evaluations == 2
    assert per["out: pixels"] == 2 * spans and per["in: gradients"] == spans
    totals, stats = _statistics(remote, x)
    assert per["in: statistics"] == stats  # one set per tile, in the losses' precision
    assert per["out: totals"] == 2 * sum(v.nbytes for sums in totals for v in sums.values())  # to each worker


def _statistics(objective, x):
    """The whole image's statistics, made here, and the bytes of the tiles' statistics."""
    totals, size = [{} for _ in objective.feature_terms], 0
    for tile, windows in objective.runner.tiles:
        stats = objective.tile_statistics(objective.runner.forward(x, tile, windows, backward=False), windows)
        size += sum(v.nbytes for sums in stats for v in sums.values())
        add_statistics(totals, stats)
    return totals, size


def run(tiny, content, style, **given):
    options = {"caffe": {**tiny["options"]["caffe"], "precision": "fp32"}}
    return stylize.stylize(content, style, **{**tiny, "options": options}, iterations=8, length=40, scales=1,
                           tile_size=12, tol=0, seed=0, **given)


def test_stylize_run_scheduler_gives_the_local_tiled_image(dask_cluster, tiny_net, files, tmp_path):
    address, _ = dask_cluster
    here, there = tmp_path / "here.png", tmp_path / "there.png"
    first = run_cli(tiny_net, files, "-o", str(here), "--tile-size", "16", "--precision", "fp32")
    assert first.exit_code == 0, first.output
    second = run_cli(tiny_net, files, "-o", str(there), "--tile-size", "16", "--precision", "fp32",
                     "--scheduler", address)
    assert second.exit_code == 0, second.output
    assert np.array_equal(np.asarray(Image.open(here)), np.asarray(Image.open(there)))


def test_a_scheduler_not_there_is_a_one_line_error(tiny_net, files, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    address = f"tcp://127.0.0.1:{free_port()}"
    result = run_cli(tiny_net, files, "-o", str(tmp_path / "x.png"), "--tile-size", "16", "--scheduler", address)
    assert result.exit_code != 0
    last = result.output.strip().splitlines()[-1]  # after the plan's line
    assert last.startswith(f"stylize: error: --scheduler {address}: no scheduler with a worker there")
    assert "Traceback" not in result.output


def test_a_short_run_equals_the_local_run_and_survives_a_killed_worker(dask_cluster, tiny, photos):
    address, workers = dask_cluster
    content, style = photos["coffee"], photos["astronaut"]
    local = run(tiny, content, style)
    assert np.array_equal(run(tiny, content, style, scheduler=address), local)
    killed = []

    def kill_one(event):
        if isinstance(event, Step) and event.step == 3 and not killed:
            # From another thread, while the next evaluations' tiles are on the workers.
            killed.append(threading.Timer(0.02, os.killpg, (workers[0].pid, signal.SIGKILL)))
            killed[0].start()

    job = stylize.Job(content, style, **{**tiny, "options": {"caffe": {**tiny["options"]["caffe"],
                                                                      "precision": "fp32"}}},
                      iterations=8, length=40, scales=1, tile_size=12, tol=0, seed=0, scheduler=address)
    image = job.run(kill_one)
    killed[0].join()
    assert workers[0].wait(timeout=10) == -signal.SIGKILL
    assert np.array_equal(image, local)


def test_a_worker_of_another_stylize_version_is_refused_by_name(dask_cluster, tmp_path):
    address, _ = dask_cluster
    preload = tmp_path / "other_version.py"  # runs in the worker process as it starts
    preload.write_text("import stylize\nstylize.__version__ = '0.0.1-other'\n")
    other = start_worker(address, str(preload))
    try:
        other_address = joined(other)
        with pytest.raises(StylizeError, match=rf"worker {other_address} runs stylize 0\.0\.1-other; "
                                               rf"this client runs {stylize.__version__}"):
            cluster.connect(address)
    finally:
        kill(other)
