"""``stylize batch`` on real Dask clusters: LocalCluster worker processes, and `dask scheduler`/`dask worker`.

Jobs use the tiny network on tiny images, so a job takes a second. The
tests that stop a job midway slow every objective evaluation of the job
processes down a little: a ``sitecustomize`` on the workers' PYTHONPATH
patches ``Objective.__call__`` in each job process started while
``DELAY_FILE`` exists (the worker processes themselves start before it).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import stylize
from stylize.batch import BatchJob
from stylize.batch.events import JobProgress, JobStarted
from stylize.cli.main import cli
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError

from .test_batch_jobs import write_images

SITECUSTOMIZE = textwrap.dedent("""
    import os
    _path = os.environ.get("STYLIZE_TEST_DELAY_FILE")
    if _path and os.path.exists(_path):
        import time
        from stylize.core.evaluation import objective
        _delay = float(open(_path).read())
        _evaluate = objective.Objective.__call__
        def _slowly(self, x):
            time.sleep(_delay)
            return _evaluate(self, x)
        objective.Objective.__call__ = _slowly
""")
#: Seconds a whole test may wait for a process or a file.
TIMEOUT = 90


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="stylize")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The sitecustomize folder and the delay file (absent: no delay)."""
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder, folder / "delay"


@pytest.fixture(scope="module")
def client(site):
    """A LocalCluster of 2 worker processes (1 thread, 1 core each), its workers able to slow their jobs."""
    from distributed import Client, LocalCluster
    import logging

    folder, delay = site
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
        patch.setenv("STYLIZE_TEST_DELAY_FILE", str(delay))
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, resources={"cores": 1},
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
            yield client


@pytest.fixture
def slow(site):
    """Job processes started inside evaluate each objective ``delay`` seconds later."""
    _, path = site

    def set_delay(seconds: float) -> None:
        path.write_text(str(seconds))

    yield set_delay
    path.unlink(missing_ok=True)


@pytest.fixture
def images(tmp_path, tiny_net):
    """Two contents and two styles, tiny random images; the tiny network's options for `stylize run`."""
    write_images(tmp_path, seed=1)
    prototxt, weights = tiny_net
    net = ["-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
           "--style-layers", "conv1,conv2", "-l", "48", "--init", "noise", "--seed", "5"]
    return tmp_path, net


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def report(path) -> dict:
    return json.loads(Path(path).read_text())


def checkpoint_steps(folder: Path) -> dict[str, int]:
    """{output: its checkpoint's step} for the checkpoints in ``folder`` (one removed meanwhile is left out)."""
    steps = {}
    for path in folder.glob("*" + checkpoints.SUFFIX):
        try:
            steps[str(path)[: -len(checkpoints.SUFFIX)]] = checkpoints.load(path).step
        except ImageError:  # its job just finished
            pass
    return steps


# -- LocalCluster -----------------------------------------------------------------------------

def test_cross_product_on_the_local_cluster_is_what_separate_runs_make(images):
    folder, net = images
    glob_args = ["-c", str(folder / "photos/*.png"), "-s", str(folder / "styles/*.png"),
                 "-o", str(folder / "out/{content}-{style}.png"), *net, "-n", "12"]
    result = invoke("batch", *glob_args, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "local Dask cluster at tcp://127.0.0.1:" in result.stderr and "2 workers x 1 thread" in result.stderr
    assert "dashboard: " in result.stderr
    done = report(folder / "out/stylize-batch.json")
    assert done["totals"] == {"done": 4, "skipped": 0, "failed": 0, "cancelled": 0}
    assert len({job["worker"] for job in done["jobs"]}) == 2  # both workers ran jobs
    assert {job["threads"] for job in done["jobs"]} == {1}
    for content in "ab":
        for style in "ab":
            alone = folder / f"alone-{content}-{style}.png"
            run = invoke("run", "-c", str(folder / f"photos/{content}.png"), "-s", str(folder / f"styles/{style}.png"),
                         "-o", str(alone), *net, "-n", "12", "--threads", "1", "-q")
            assert run.exit_code == 0, run.output
            assert np.array_equal(pixels(folder / f"out/{content}-{style}.png"), pixels(alone)), (content, style)
    assert not list((folder / "out").glob("*.npz"))  # checkpoints removed at the end

    # Rerunning the finished batch does no work: no cluster is even reached.
    again = invoke("batch", *glob_args, "--scheduler", "tcp://127.0.0.1:9")
    assert again.exit_code == 0, again.output
    assert report(folder / "out/stylize-batch.json")["totals"]["skipped"] == 4
    assert "4 skipped" in again.stderr and "Dask cluster" not in again.stderr


def test_a_bad_image_fails_its_job_alone_with_its_error(images, client):
    folder, net = images
    (folder / "photos/broken.png").write_text("not an image")
    (folder / "jobs.csv").write_text("content,style,output,iterations\n"
                                     "photos/a.png,styles/a.png,out/1.png,\n"
                                     "photos/broken.png,styles/a.png,out/2.png,\n"
                                     "photos/b.png,styles/a.png;styles/b.png,out/3.png,6\n"
                                     "photos/b.png,styles/b.png,out/4.png,\n")
    result = invoke("batch", "-m", str(folder / "jobs.csv"), *net, "-n", "8", "--scheduler",
                    client.scheduler.address, "--report", str(folder / "report.json"))
    assert result.exit_code == 1, result.output
    assert f"Dask cluster at {client.scheduler.address}: 2 jobs at once, 1 threads each" in result.stderr
    rows = result.stdout.splitlines()
    assert len(rows) == 5 and "failed" in rows[2] and "broken.png" in rows[2]
    done = report(folder / "report.json")
    assert [job["status"] for job in done["jobs"]] == ["done", "failed", "done", "done"]
    bad = done["jobs"][1]
    assert bad["exit_code"] == ImageError.exit_code and "broken.png" in bad["error"] and "\n" not in bad["error"]
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["1.png", "3.png", "4.png"]
    assert json.loads(Image.open(folder / "out/3.png").text["stylize:settings"])["iterations"] == 6


def test_a_sigkilled_worker_is_replaced_and_its_job_resumes_from_the_checkpoint(images, client, slow):
    folder, net = images
    slow(0.05)
    output = folder / "out/killed.png"
    job = BatchJob.of(folder / "photos/a.png", folder / "styles/b.png", output, checkpoint_every=5, iterations=80,
                      backend="caffe", length=48, content_layers=["conv2"], style_layers=["conv1", "conv2"],
                      options={"caffe": dict(zip(("prototxt", "weights"), net[3:6:2]))}, init="noise", seed=5)
    pids = client.run(os.getpid)
    seen, killed = [], []

    def on_event(event):
        seen.append(event)
        if isinstance(event, JobProgress) and not killed and event.step >= 15 and \
                checkpoints.load(job.checkpoint).step >= 15:
            worker = next(e.worker for e in seen if isinstance(e, JobStarted))
            os.kill(pids[worker], signal.SIGKILL)
            killed.append(checkpoints.load(job.checkpoint).step)

    [result] = stylize.batch([job], client=client, on_event=on_event)
    assert killed, "the job ended before it could be killed"
    assert result.status == "done" and result.attempts == 2, result
    starts = [e for e in seen if isinstance(e, JobStarted)]
    assert [e.attempt for e in starts] == [1, 2] and starts[0].first_step == 0
    assert starts[1].first_step >= killed[0] >= 15 and result.first_step == starts[1].first_step
    assert output.exists() and not job.checkpoint.exists()
    assert Image.open(output).text["stylize:resumed-from"] == str(result.first_step)


def test_ctrl_c_keeps_checkpoints_and_the_same_command_finishes_what_is_left(images, site, slow):
    """Ctrl-C as a terminal sends it: to the whole process group, the local cluster's workers included."""
    folder, net = images
    slow(0.03)
    args = ["batch", "-c", str(folder / "photos/*.png"), "-s", str(folder / "styles/*.png"), "-o",
            str(folder / "out/{content}-{style}.png"), *net, "-n", "60", "--checkpoint-every", "5", "--workers", "2"]
    command = [str(Path(sys.executable).parent / "stylize"), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site[0]), os.environ.get("PYTHONPATH", "")]),
           "STYLIZE_TEST_DELAY_FILE": str(site[1])}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        out = folder / "out"
        # Stopped in the second pair of jobs (they run two at a time), once both have a checkpoint.
        while len(list(out.glob("*.png"))) < 2 or \
                sum(step >= 10 for step in checkpoint_steps(out).values()) < 2:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    finally:
        stop(proc)
    assert proc.returncode == 130, stderr
    assert "interrupted; checkpoints kept" in stderr
    first = report(out / "stylize-batch.json")
    assert first["interrupted"] and first["totals"]["cancelled"] >= 1
    finished = {job["output"] for job in first["jobs"] if job["status"] == "done"}
    kept = checkpoint_steps(out)
    assert len(finished) == 2 and len(kept) == 2 and not finished & set(kept)

    assert "Traceback" not in stderr  # the workers lived through it and cancelled their jobs
    site[1].unlink()  # the rest at full speed
    again = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert again.returncode == 0, again.stderr
    second = {job["output"]: job for job in report(out / "stylize-batch.json")["jobs"]}
    assert {o for o, job in second.items() if job["status"] == "skipped"} == finished
    for output, step in kept.items():
        assert second[output]["status"] == "done" and second[output]["first_step"] == step
    assert len(list(out.glob("*.png"))) == 4 and not list(out.glob("*.npz"))


# -- `dask scheduler` and `dask worker` as separate processes -----------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*command: str) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_for_line(proc: subprocess.Popen, pattern: str) -> re.Match:
    deadline = time.monotonic() + TIMEOUT
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return match
        assert line or proc.poll() is None, "".join(lines)
    pytest.fail(f"no {pattern!r} within {TIMEOUT} s: {''.join(lines)}")


def test_a_dask_scheduler_and_worker_started_as_commands_run_the_batch(images):
    folder, net = images
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start(dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                      "--no-dashboard")
    worker = None
    try:
        wait_for_line(scheduler, r"Scheduler at:\s+tcp://")
        worker = start(dask, "worker", address, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                       "--resources", "cores=1", "--no-dashboard")
        worker_address = wait_for_line(worker, r"Start worker at:\s+(tcp://\S+)").group(1)
        result = invoke("batch", "-c", str(folder / "photos/a.png"), "-s", str(folder / "styles/*.png"),
                        "-o", str(folder / "out/{n}.png"), *net, "-n", "6", "--scheduler", address)
        assert result.exit_code == 0, result.output
        done = report(folder / "out/stylize-batch.json")
        assert done["cluster"]["scheduler"] == address and not done["cluster"]["local"]
        assert [(job["status"], job["worker"], job["threads"]) for job in done["jobs"]] == \
            [("done", worker_address, 1)] * 2
        assert (folder / "out/1.png").exists() and (folder / "out/2.png").exists()
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                stop(proc)
