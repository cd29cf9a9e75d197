"""Checkpoints and --resume: a long run survives SIGKILL and Ctrl-C and loses at most one interval.

The kill tests run the real command in a subprocess with the tiny network;
each objective evaluation is slowed down a little there (a wrapper patches
``Objective.__call__``), so that the run is still going when it is killed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.cli.main import cli
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError, UsageError
from stylize.core.request.settings import Settings

#: The real CLI, with every objective evaluation slowed by $TEST_EVALUATION_DELAY seconds.
SLOW_CLI = textwrap.dedent("""
    import os, time
    from stylize.core.evaluation import objective
    delay = float(os.environ.get("TEST_EVALUATION_DELAY", "0"))
    evaluate = objective.Objective.__call__
    def slowly(self, x):
        time.sleep(delay)
        return evaluate(self, x)
    objective.Objective.__call__ = slowly
    from stylize.cli.main import cli
    cli(prog_name="stylize")
""")
EVERY = 5


@pytest.fixture
def job(tmp_path, tiny_net):
    """Inputs, and the arguments of a tiny-network run writing tmp_path/out/result.png."""
    prototxt, weights = tiny_net
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    out = tmp_path / "out" / "result.png"
    args = ["run", "-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-c", str(tmp_path / "content.png"), "-s",
            str(tmp_path / "style.png"), "-o", str(out), "-l", "48", "--scales", "2", "--threads", "1",
            "--tol", "0"]  # every iteration runs: the tests count them
    return {"args": args, "out": out, "checkpoint": checkpoints.path_for(out), "tmp": tmp_path}


def start(args: list[str], delay: float) -> subprocess.Popen:
    env = {**os.environ, "TEST_EVALUATION_DELAY": str(delay)}
    return subprocess.Popen([sys.executable, "-c", SLOW_CLI, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SLOW_CLI, *args], text=True, capture_output=True,
                          timeout=timeout)


def wait_for_checkpoint(proc: subprocess.Popen, path: Path, step: int, timeout: float = 60) -> None:
    """Poll until the running command has a checkpoint at or past ``step``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, ("the run ended before it could be stopped", proc.communicate())
        if path.exists() and checkpoints.load(path).step >= step:
            return
        time.sleep(0.01)
    proc.kill()
    pytest.fail(f"no checkpoint past step {step} after {timeout} s: {proc.communicate()}")


def steps_in(folder: Path) -> list[int]:
    return sorted(int(p.stem.rsplit("-", 1)[1]) for p in folder.glob("result-*.png"))


def test_resume_after_sigkill_loses_at_most_one_interval(job):
    killed_dir, resumed_dir = job["tmp"] / "killed", job["tmp"] / "resumed"
    args = [*job["args"], "-n", "180", "--checkpoint-every", str(EVERY)]
    # Past the first level (120 of 180 iterations at --scales 2), so the resumed run must skip it.
    proc = start([*args, "--save-every", "1", "--save-dir", str(killed_dir), "-q"], delay=0.03)
    wait_for_checkpoint(proc, job["checkpoint"], 125)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not job["out"].exists()
    saved = checkpoints.load(job["checkpoint"])
    reached = max(steps_in(killed_dir))  # a snapshot is written after each iteration
    assert saved.step % EVERY == 0 and reached - EVERY <= saved.step <= reached
    assert saved.level == 1 and saved.levels == 2 and saved.image.shape == (36, 48, 3)
    assert saved.image.dtype == np.float32

    # Other options are refused with one line naming them; the checkpoint stays.
    refused = finish([*args, "--resume", "-r", "1e3"])
    assert refused.returncode == UsageError.exit_code, refused.stderr
    assert refused.stdout == "" and refused.stderr.count("\n") == 1, refused.stderr
    assert refused.stderr.startswith("stylize: error: cannot resume from")
    assert "--ratio: 20000.0 in the checkpoint, 1000.0 now" in refused.stderr
    assert job["checkpoint"].exists() and not job["out"].exists()

    # Cosmetic options (--save-every/--save-dir, --threads, -q) may change.
    resumed = finish([*args, "--resume", "--save-every", "1", "--save-dir", str(resumed_dir), "--threads", "2"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from iteration {saved.step}/180" in resumed.stderr
    assert f"wrote {job['out']}" in resumed.stderr
    assert steps_in(resumed_dir) == list(range(saved.step + 1, 181))
    with Image.open(job["out"]) as img:
        assert img.size == (48, 36)
        assert img.text["stylize:resumed-from"] == str(saved.step)
        assert json.loads(img.text["stylize:settings"])["iterations"] == 180
    assert not job["checkpoint"].exists()  # removed once the run is done


def test_ctrl_c_writes_image_and_checkpoint_and_resume_finishes(job):
    args = [*job["args"], "-n", "150", "--checkpoint-every", "1000"]
    proc = start(args, delay=0.03)
    # No periodic checkpoint comes before Ctrl-C: wait for the progress lines instead.
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if line.startswith("stylizing: ") and int(line.split()[1].split("/")[0]) >= 12:
            break
        assert line, lines
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (lines, stderr)
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stylize: interrupted at iteration ") and "--resume continues" in last, last
    step = int(last.split("iteration ")[1].split("/")[0])
    assert checkpoints.load(job["checkpoint"]).step == step  # written at Ctrl-C, not at an interval
    with Image.open(job["out"]) as img:
        assert img.text["stylize:step"] == str(step)

    resumed = finish([*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from iteration {step}/150" in resumed.stderr
    assert not job["checkpoint"].exists()
    with Image.open(job["out"]) as img:
        assert "stylize:step" not in img.text and img.text["stylize:resumed-from"] == str(step)


# -- in-process: messages and bookkeeping ---------------------------------------

def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="stylize")


def test_resume_without_checkpoint_starts_from_the_beginning(job):
    result = invoke(*job["args"], "-n", "4", "--resume")
    assert result.exit_code == 0, result.output
    assert f"no checkpoint at {job['checkpoint']}; starting from the beginning" in result.stderr
    assert os.listdir(job["out"].parent) == ["result.png"]


def test_resume_of_a_finished_run_does_not_overwrite_it(job):
    """Without a checkpoint there is nothing to continue: --resume is no licence to overwrite."""
    assert invoke(*job["args"], "-n", "2", "-q").exit_code == 0
    before = job["out"].read_bytes()
    result = invoke(*job["args"], "-n", "2", "-q", "--resume")
    assert result.exit_code == 3 and "already exists; pass --force" in result.stderr
    assert job["out"].read_bytes() == before


def test_resume_continues_from_the_working_image_with_preserved_colors(job, monkeypatch):
    """With --preserve-colors the shown image is recoloured; a resume must start from what the optimizer had."""
    from stylize.core.run.levels import Start
    from stylize.core.run.pipeline import transfer
    from stylize.core.io.images import load_image
    from stylize.optimizers.lbfgs import LBFGS

    starts, real_minimize = [], LBFGS.minimize

    def record(self, objective, x0, *args, **kwargs):
        starts.append(x0.copy())
        return real_minimize(self, objective, x0, *args, **kwargs)

    monkeypatch.setattr(LBFGS, "minimize", record)
    settings = Settings(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                                 options={"caffe": dict(zip(("prototxt", "weights"), job["args"][4:7:2]))},
                                 length=32, iterations=6, scales=1, threads=1, preserve_colors=True)
    content = load_image(job["tmp"] / "content.png")
    steps = []
    transfer(content, load_image(job["tmp"] / "style.png"), settings, callback=steps.append)
    third = steps[2]
    assert not np.allclose(third.state, third.image, atol=1e-3)  # recolouring really changes it
    transfer(content, load_image(job["tmp"] / "style.png"), settings,
                      start=Start(3, third.state))
    assert np.allclose(starts[-1], third.x, atol=1e-3)


def test_checkpoints_are_written_every_n_and_removed_at_the_end(job, replace_transfer):
    from stylize.core.run import pipeline

    seen = {}
    real = pipeline.transfer

    def watching(*args, callback, **kwargs):
        def check(result):
            callback(result)
            if job["checkpoint"].exists():
                seen.setdefault(checkpoints.load(job["checkpoint"]).step, result.step)
        return real(*args, callback=check, **kwargs)

    replace_transfer(watching)
    result = invoke(*job["args"], "-n", "9", "-q", "--checkpoint-every", "3")
    assert result.exit_code == 0, result.output
    assert seen == {3: 3, 6: 6, 9: 9}  # each one as soon as its iteration ends
    assert os.listdir(job["out"].parent) == ["result.png"]
    result = invoke(*job["args"], "-n", "9", "-q", "--checkpoint-every", "0", "--force")
    assert result.exit_code == 0 and seen == {3: 3, 6: 6, 9: 9}


def test_changed_input_image_is_refused(job):
    settings = Settings()
    print_ = checkpoints.fingerprint(settings, {"content_image": job["tmp"] / "content.png"})
    image = np.zeros((24, 32, 3), np.float32)
    checkpoints.Checkpoint(4, 0, 2, image, print_).save(job["checkpoint"])
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(job["tmp"] / "content.png")
    now = checkpoints.fingerprint(settings, {"content_image": job["tmp"] / "content.png"})
    with pytest.raises(UsageError, match="the content image changed"):
        checkpoints.load(job["checkpoint"]).check(now, job["checkpoint"])


def test_replacing_an_old_checkpoint_is_announced(job):
    checkpoints.Checkpoint(4, 0, 2, np.zeros((8, 8, 3), np.float32), {}).save(job["checkpoint"])
    result = invoke(*job["args"], "-n", "2")
    assert result.exit_code == 0, result.output
    assert "replaces the checkpoint" in result.stderr and "--resume" in result.stderr
    assert not job["checkpoint"].exists()


def test_checkpoint_roundtrip_is_lossless_and_atomic(tmp_path):
    image = np.random.default_rng(1).random((5, 7, 3), dtype=np.float32)
    path = tmp_path / "o.png.checkpoint.npz"
    checkpoints.Checkpoint(12, 1, 3, image, {"ratio": "10000.0"}).save(path)
    loaded = checkpoints.load(path)
    assert (loaded.step, loaded.level, loaded.levels) == (12, 1, 3)
    assert np.array_equal(loaded.image, image) and loaded.fingerprint == {"ratio": "10000.0"}
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left


def test_unreadable_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "o.png.checkpoint.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ImageError, match="not a readable stylize checkpoint"):
        checkpoints.load(path)


def test_fingerprint_ignores_how_a_run_is_carried_out():
    base = checkpoints.fingerprint(Settings(), {})
    assert checkpoints.fingerprint(Settings(threads=1), {}) == base
    differ = checkpoints.differences(base, checkpoints.fingerprint(Settings(length=256, losses=("tv",)), {}))
    assert differ == ['--length: 512 in the checkpoint, 256 now', '--loss: ["gram"] in the checkpoint, ["tv"] now']
