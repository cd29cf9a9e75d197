"""Batch memory as a Dask resource (issue 27, item 9): jobs hold their planned peak bytes of a worker's memory.

Before, each job took one core slot whatever its size, so a worker could be
handed more jobs than its memory holds. Real LocalCluster worker processes
and real jobs on the tiny network.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from stylize.batch import BatchJob, JobEnded, JobStarted
from stylize.batch.plan import local_layout, plan
from stylize.batch.runner import Batch

from .test_batch_jobs import write_images


@pytest.fixture
def jobs(tmp_path, tiny_net):
    write_images(tmp_path, seed=3)
    prototxt, weights = tiny_net
    net = dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"], length=48, iterations=30,
               tol=0, threads=1, options={"caffe": {"prototxt": prototxt, "weights": weights}})
    return [BatchJob.of(str(tmp_path / "photos" / f"{name}.png"), str(tmp_path / "styles/a.png"),
                        str(tmp_path / "out" / f"{name}.png"), **net) for name in ("a", "b")]


def cluster(cores: int, memory: int):
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=1, threads_per_worker=cores, processes=True,
                         resources={"cores": cores, "memory": memory}, dashboard_address=None,
                         silence_logs=logging.ERROR)
    return local, Client(local)


def test_jobs_hold_their_peak_bytes_and_one_larger_than_every_worker_is_refused(jobs):
    planned = plan(jobs)
    need = max(p.memory_bytes for p in planned)
    assert need > 0
    local, client = cluster(cores=2, memory=int(need * 1.5))  # cores for two one-thread jobs, memory for one
    try:
        seen = []
        with Batch(planned, client=client) as runner:
            assert runner.memory_constrained and runner.most_memory == int(need * 1.5)
            results = runner.run(seen.append)
        assert [r.status for r in results] == ["done", "done"], [r.error for r in results]
        order = [(type(e).__name__, e.number) for e in seen if isinstance(e, (JobStarted, JobEnded))]
        first = order[0][1]
        assert order[:2] == [("JobStarted", first), ("JobEnded", first)], order  # never both at once

        # A plan whose peak is above every worker's memory (as a larger image's would be): refused before it is
        # sent, with the largest worker's figure; the other job runs.
        for job in jobs:
            Path(job.output).unlink()
        planned = plan(jobs)
        huge = planned[0].estimate.memory_bytes * 2
        planned[0] = dataclasses.replace(planned[0], estimate=dataclasses.replace(planned[0].estimate,
                                                                                  memory_bytes=huge))
        with Batch(planned, client=client) as runner:
            results = runner.run()
        assert [r.status for r in results] == ["failed", "done"] and results[0].exit_code == 7
        assert results[0].error.startswith(f"it needs about {huge / 2**20:.0f} MiB at its peak, more than the "
                                           f"largest worker offers ({int(need * 1.5) / 2**20:.0f} MiB")
        assert not Path(jobs[0].output).exists() and Path(jobs[1].output).exists()
    finally:
        client.close()
        local.close()


def test_the_local_cluster_gives_each_worker_its_share_of_the_memory(jobs):
    planned = plan(jobs)
    need = planned[0].memory_bytes
    layout = local_layout(planned, cores=4, memory=need * 3, threads=1)
    assert layout.workers == 2 and layout.memory == need * 3 // 2 >= need
    assert local_layout(planned, cores=4, memory=need * 3, workers=4).memory == need * 3 // 4
