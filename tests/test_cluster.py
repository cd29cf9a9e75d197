"""One picture's tiles on a real `dask scheduler` and two `dask worker` processes: equal to the local tiled
evaluation and run, a worker SIGKILLed mid-run, the scheduler SIGKILLed (one line, checkpoint kept, resumed
on a new cluster), a worker of another stylize version or another network refused by name."""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stylize
from stylize.backends.caffe_net import CaffeBackend
from stylize.cluster import connection
from stylize.cluster import objective as cluster
from stylize.cluster import worker
from stylize.core.run import checkpoint as checkpoints
from stylize.core.planning import memory, speed
from stylize.core.run import job as jobs
from stylize.core.errors import StylizeError
from stylize.core.run.events import Failed, LevelStarted, Step
from stylize.core.evaluation.objective import WeightedLoss
from stylize.core.request.settings import Settings
from stylize.core.evaluation.tiled_objective import add_statistics, make_tiled_objective
from stylize.core.evaluation.tiling import make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.losses.tv import TotalVariationLoss

from .test_batch_cluster import free_port, start, wait_for_line
from .test_tiling import LAYERS, files, images, run_cli  # noqa: F401 (files: a fixture)
from .tinynet import write_tiny_net

DASK = str(Path(sys.executable).parent / "dask")


def start_worker(address: str, *preload: str, env: dict | None = None, cwd: Path | None = None):
    """A `dask worker` process (1 thread, no nanny: SIGKILL ends it for good) joining ``address``, running
    the ``preload`` scripts as it starts, in folder ``cwd``; wait for it with ``joined``."""
    command = [DASK, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
               "--no-dashboard", "--no-nanny", *(f"--preload={path}" for path in preload)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
                            cwd=cwd)


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


def start_cluster(*folders: Path | None):
    """A `dask scheduler` on 127.0.0.1 and a `dask worker` started in each of ``folders`` (None: here),
    all joined: (address, scheduler process, [worker processes], [worker addresses]); end it with ``end``."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start(DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                      "--no-dashboard")
    workers = []
    try:
        wait_for_line(scheduler, r"Scheduler at:\s+tcp://")
        workers = [start_worker(address, cwd=folder) for folder in folders]
        return address, scheduler, workers, [joined(worker) for worker in workers]
    except BaseException:
        end(address, scheduler, workers)
        raise


def end(address: str, scheduler, workers) -> None:
    connection.disconnect(address)
    for proc in (*workers, scheduler):
        kill(proc)


@pytest.fixture(scope="module")
def dask_cluster():
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1: (address, [worker processes])."""
    address, scheduler, workers, _ = start_cluster(None, None)
    try:
        yield address, workers
    finally:
        end(address, scheduler, workers)


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
    totals, stats = _statistics(local, x)  # made here: the local objective holds the content target
    assert per["in: statistics"] == stats  # one set per tile, in the losses' precision
    assert per["out: totals"] == 2 * sum(v.nbytes for sums in totals for v in sums.values())  # to each worker
    # The targets were made there: every tile of the content and the two styles went out once.
    shapes = [content.shape[:2], *(s.shape[:2] for s in styles)]
    sent = sum(h * w for shape in shapes for h, w in (t.span_shape for t in tiles.grid(shape).tiles())) * 3 * 4
    assert remote.targets_traffic.sent == {"targets: pixels": sent}
    # The content target stayed there, one future per tile (its core features), never crossing to the client.
    assert set(remote.targets_traffic.received) == {"targets: statistics"}
    content_loss = remote.feature_terms[0].loss
    assert not hasattr(content_loss, "targets") and len(remote.content) == len(remote.runner.tiles)
    held = remote.client.gather(remote.content[0])
    np.testing.assert_array_equal(held["conv2"], local.feature_terms[0].loss.targets["conv2"][
        :, local.runner.tiles[0][1]["conv2"].window.rows, local.runner.tiles[0][1]["conv2"].window.cols])


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
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT", 1)
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
            connection.connect(address)
    finally:
        kill(other)


def lose(scheduler, address: str) -> None:
    """SIGKILL the scheduler and wait until this process's client has seen it go."""
    kill(scheduler)
    deadline = time.monotonic() + 10
    while connection._CLIENTS[address].status == "running" and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_lost_scheduler_stops_the_run_in_one_line_and_resume_finishes_on_a_new_cluster(
        tiny_net, files, tmp_path, monkeypatch):
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT", 5)
    args = ["--tile-size", "16", "--precision", "fp32", "--scales", "2", "-n", "12", "--checkpoint-every", "100"]
    undisturbed, out = tmp_path / "undisturbed.png", tmp_path / "out.png"
    assert run_cli(tiny_net, files, "-o", str(undisturbed), *args).exit_code == 0
    first = start_cluster(None, None)
    try:
        address, scheduler = first[:2]
        lost_at = []
        on_level = jobs._Run.on_level

        def lose_at_the_second_level(run, level):  # between the levels, both on the cluster
            if level.index == 1 and not lost_at:
                lost_at.append(run.latest.step)
                lose(scheduler, address)
            on_level(run, level)

        monkeypatch.setattr(jobs._Run, "on_level", lose_at_the_second_level)
        result = run_cli(tiny_net, files, "-o", str(out), *args, "--scheduler", address)
        monkeypatch.setattr(jobs._Run, "on_level", on_level)
    finally:
        end(*first[:3])
    assert result.exit_code == 1 and "Traceback" not in result.output
    checkpoint = checkpoints.path_for(out)
    assert result.output.strip().splitlines()[-1] == (
        f"stylize: error: the Dask scheduler at {address} was lost (the connection dropped); start a scheduler "
        "and workers again and continue with --resume (--scheduler may name the new one); "
        f"iteration {lost_at[0]} is kept in {checkpoint}")
    assert not out.exists() and checkpoints.load(checkpoint).step == lost_at[0] > 0

    second = start_cluster(None, None)
    try:
        resumed = run_cli(tiny_net, files, "-o", str(out), *args, "--resume", "--scheduler", second[0])
    finally:
        end(*second[:3])
    assert resumed.exit_code == 0, resumed.output
    assert f"resuming from iteration {lost_at[0]}/12" in resumed.output and not checkpoint.exists()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(undisturbed)))


def lost_run(cluster, tiny, photos, out, on_event, **given) -> tuple:
    """A Job on ``cluster`` (``start_cluster``'s, ended here) that ``on_event`` makes lose it: (the Job, its
    ClusterLost)."""
    address, scheduler, workers, _ = cluster
    options = {"caffe": {**tiny["options"]["caffe"], "precision": "fp32"}}
    job = stylize.Job(photos["coffee"], photos["astronaut"], **{**tiny, "options": options}, output=out,
                      tile_size=12, tol=0, seed=0, scheduler=address, checkpoint_every=1000, **given)
    try:
        with pytest.raises(connection.ClusterLost) as caught:
            job.run(on_event)
    finally:
        end(address, scheduler, workers)
    return job, caught.value


def test_a_scheduler_lost_mid_evaluation_keeps_the_iteration_reached(tiny, photos, tmp_path, monkeypatch):
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT", 5)
    cluster = start_cluster(None, None)
    address, scheduler = cluster[:2]
    out, seen, timer = tmp_path / "out.png", [], []

    def on_event(event):
        seen.append(event)
        if isinstance(event, Step) and event.step == 3 and not timer:
            # From another thread, while the next evaluations' tiles are on the workers.
            timer.append(threading.Timer(0.02, kill, (scheduler,)))
            timer[0].start()

    _, error = lost_run(cluster, tiny, photos, out, on_event, iterations=200, length=40, scales=1)
    timer[0].join()
    reached = [e.step for e in seen if isinstance(e, Step)][-1]
    assert 3 <= reached < 200 and isinstance(seen[-1], Failed) and seen[-1].exit_code == 1
    assert str(error).startswith(f"the Dask scheduler at {address} was lost (")
    assert str(error).endswith(f"iteration {reached} is kept in {checkpoints.path_for(out)}")
    assert checkpoints.load(checkpoints.path_for(out)).step == reached and not out.exists()


def test_a_worker_with_another_network_is_refused_by_name(tiny_net, tmp_path, monkeypatch):
    same, other, none = (tmp_path / name for name in ("same", "other", "none"))
    for folder in (same, other, none):
        folder.mkdir()
    write_tiny_net(same, seed=0)
    write_tiny_net(other, seed=1)  # the same files' names and sizes, other weights
    monkeypatch.chdir(same)  # the options name the files relatively: each worker reads its own folder's
    address, scheduler, workers, names = start_cluster(same, other, none)
    try:
        options = {"prototxt": "tiny.prototxt", "weights": "tiny.caffemodel", "precision": "fp32"}
        backend = CaffeBackend(LAYERS, **options)
        content, styles, _ = images()
        settings = Settings(backend="caffe", options={"caffe": options}, scheduler=address)
        with pytest.raises(StylizeError) as caught:
            cluster.make_cluster_objective(backend, losses(), content, styles,
                                           make_tiles(backend.tiling(LAYERS), 12), settings)
    finally:
        end(address, scheduler, workers)
    message, mine = str(caught.value), worker.parameters_digest(backend)
    assert f"backend 'caffe' with {dict(sorted(options.items()))} is {mine} here, but " in message
    assert names[0] not in message
    assert f"worker {names[1]} loaded {mine.split(',')[0]}, sha256 " in message  # the same size, not the same sum
    assert f"worker {names[1]} loaded {mine}" not in message
    assert f"worker {names[2]} cannot load it (tiny.prototxt: network definition file not found)" in message


def test_the_plan_sizes_tiles_for_the_workers_and_says_both_figures(dask_cluster, tiny, tiny_net, files, photos,
                                                                    tmp_path):
    address, _ = dask_cluster
    info = connection.connect(address).scheduler_info(n_workers=-1)["workers"]
    smallest = int(min(w["memory_limit"] for w in info.values()) * 0.8)  # where Dask pauses a worker
    job = stylize.Job(photos["coffee"], photos["astronaut"], **tiny, length=600, scales=2, iterations=4,
                      tile_size="auto", scheduler=address)
    coarse, final = job.estimate.plan.levels
    assert coarse.machines == 0 and coarse.tiles is None  # 300 px: no room for a 256 px core per worker
    tiles = math.prod(final.tiles.grid(final.shape).counts)
    n = len(info)  # two, or one after the test that kills a worker
    assert final.machines == n <= tiles and tiles >= 2 and final.worker_bytes <= smallest
    assert job.plan.worker_limit == smallest and job.plan.workers == n
    alone = final.flops / speed.rate("caffe", 1, final.arithmetic)
    assert final.iteration_seconds == pytest.approx(alone * math.ceil(tiles / n) / tiles)  # the slowest worker's

    result = run_cli(tiny_net, files, "-o", str(tmp_path / "x.png"), "--length", "600", "--tile-size", "auto",
                     "--dry-run", "--scheduler", address)
    assert result.exit_code == 0, result.output
    line, header, row = result.stdout.splitlines()
    on, who = ("2 workers", "each of 2 workers") if n == 2 else ("1 worker", "the worker")
    assert re.search(rf"planned: one scale \(600 px\), 6 iterations, 600 px tiled \d+x\d+, .* on {on}; "
                     rf"expected about .*, memory about .* here, {who} about [0-9.]+ [MG]iB "
                     rf"\(of {re.escape(memory.format_bytes(smallest))} usable\)$", line), line
    assert header.split()[-3:] == ["machines", "worker", "memory"] and row.split()[-3] == str(n)


def test_a_cluster_left_without_workers_stops_the_run_in_one_line(tiny, photos, tmp_path, monkeypatch):
    """Every worker killed mid-run: Dask cancels the tiles that need the scale's spec; the run stops, its
    iteration kept."""
    monkeypatch.setattr(connection, "NO_WORKER_TIMEOUT", 2)
    cluster = start_cluster(None, None)
    address, _, workers, _ = cluster
    out, seen = tmp_path / "out.png", []

    def on_event(event):
        seen.append(event)
        if isinstance(event, Step) and event.step == 3:
            for worker_process in workers:
                kill(worker_process)

    started = time.monotonic()
    _, error = lost_run(cluster, tiny, photos, out, on_event, iterations=200, length=40, scales=1)
    assert [e.step for e in seen if isinstance(e, Step)][-1] == 3 and time.monotonic() - started < 60
    assert str(error) == (f"every worker of the Dask cluster at {address} was lost, and this scale's spec "
                          f"with them; start workers (`dask worker {address} --nthreads 1`) and continue "
                          f"with --resume; iteration 3 is kept in {checkpoints.path_for(out)}")
    assert checkpoints.load(checkpoints.path_for(out)).step == 3 and not out.exists()


def test_a_scale_that_finds_no_worker_stops_the_run_after_a_while(tiny, photos, tmp_path, monkeypatch):
    """Every worker gone between scales: the next scale's tasks would wait for one forever; after
    NO_WORKER_TIMEOUT the run stops, the first scale's result kept."""
    monkeypatch.setattr(connection, "NO_WORKER_TIMEOUT", 2)
    cluster = start_cluster(None, None)
    address, _, workers, _ = cluster
    out, steps = tmp_path / "out.png", []

    def on_event(event):
        if isinstance(event, Step):
            steps.append(event.step)
        if isinstance(event, LevelStarted) and event.level.index == 1:
            for worker_process in workers:
                kill(worker_process)

    job, error = lost_run(cluster, tiny, photos, out, on_event, iterations=8, length=48, scales=2)
    boundary = job.plan.levels[1].first_step
    assert steps[-1] == boundary and job.plan.levels[1].machines > 0
    assert str(error) == (f"the Dask cluster at {address} has had no worker for 2 s; start workers "
                          f"(`dask worker {address} --nthreads 1`) and continue with --resume; "
                          f"iteration {boundary} is kept in {checkpoints.path_for(out)}")
    assert checkpoints.load(checkpoints.path_for(out)).step == boundary
