"""Checkpoints under faults (issue 27, items 3 and 4): a write the disk refuses, a damaged or truncated file.

The disk-full case is a real fault: the run is a real ``stylize run`` in a
subprocess whose file-size limit (``RLIMIT_FSIZE``) lets the output through
but not the larger checkpoint, so every checkpoint write fails in the
kernel (EFBIG, the same ``OSError`` path as ENOSPC).
"""
from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize import Job, events
from stylize.cli.main import cli
from stylize.core.run import checkpoint as checkpoints
from stylize.core.errors import ImageError


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    return tmp_path / "content.png", tmp_path / "style.png"


@pytest.fixture
def tiny(tiny_net):
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1, length=48, scales=1,
                tol=0)


def cli_args(tiny_net, inputs, output, *extra: str) -> list[str]:
    prototxt, weights = tiny_net
    return ["run", "-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-c", str(inputs[0]), "-s", str(inputs[1]), "-o", str(output),
            "-l", "48", "--scales", "1", "--threads", "1", "--tol", "0", *extra]


def cancel_at(job: Job, step: int):
    def on_event(event):
        if isinstance(event, events.Step) and event.step == step:
            job.cancel()
    return on_event


def test_save_keeps_the_previous_generation_and_remove_takes_both(tmp_path):
    path = tmp_path / "out.png.checkpoint.npz"
    for step in (10, 20):
        checkpoints.Checkpoint(step, 0, 1, np.full((4, 5, 3), step / 100, np.float32), {"a": "b"}).save(path)
    assert checkpoints.load(path).step == 20 and checkpoints.load(checkpoints.previous_for(path)).step == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".prev"]  # no leftover
    (tmp_path / f".{path.name}.abc.tmp").write_bytes(b"half")  # what a kill inside a write leaves
    checkpoints.remove(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_damaged_checkpoint_without_a_previous_one_is_a_one_line_error(tmp_path, tiny_net, inputs, damage):
    """Before: ``internal error ...: BadZipFile`` / ``EOFError``, exit 70. After: exit 3, the file named."""
    output = tmp_path / "out.png"
    path = checkpoints.path_for(output)
    checkpoints.Checkpoint(5, 0, 1, np.zeros((36, 48, 3), np.float32), {}).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    result = CliRunner().invoke(cli, cli_args(tiny_net, inputs, output, "--iterations", "4", "--resume"))
    lines = result.output.strip().splitlines()
    assert result.exit_code == 3, result.output
    assert lines[-1].startswith(f"stylize: error: {path}: not a readable stylize checkpoint (damaged or truncated")
    assert "internal error" not in result.output and not output.exists()


def test_a_damaged_checkpoint_resumes_from_the_previous_generation_said_in_one_line(tmp_path, tiny, inputs, caplog):
    output = tmp_path / "out.png"
    job = Job(*inputs, output=output, iterations=16, checkpoint_every=5, **tiny)
    with pytest.raises(Exception, match="cancelled"):
        job.run(cancel_at(job, 12))  # checkpoints at 5, 10 and 13 (the cancel lands after the next iteration)
    path = checkpoints.path_for(output)
    assert checkpoints.load(path).step == 13
    data = path.read_bytes()
    path.write_bytes(data[:100])  # a failing disk, a copy cut short
    resumed = Job(*inputs, output=output, iterations=16, checkpoint_every=5, resume=True, **tiny)
    assert resumed.first_step == 10
    assert resumed.resumed.note == f"{path.name} is damaged; resuming from the previous checkpoint, at iteration 10"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"stylize: warning: {resumed.resumed.note}"]
    resumed.run()
    assert output.exists() and not path.exists() and not checkpoints.previous_for(path).exists()


def test_damage_to_both_generations_names_the_latest(tmp_path):
    path = tmp_path / "c.npz"
    for step in (1, 2):
        checkpoints.Checkpoint(step, 0, 1, np.zeros((2, 2, 3), np.float32), {}).save(path)
    path.write_bytes(b"PK\x03\x04broken")
    checkpoints.previous_for(path).write_bytes(b"")
    with pytest.raises(ImageError, match=f"^{path}: not a readable stylize checkpoint"):
        checkpoints.load(path)
    assert checkpoints.step_of(path) is None


def _limit_file_size(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_checkpoint_the_disk_refuses_is_a_warning_and_the_run_finishes(tmp_path, tiny_net, inputs):
    """Before: ``internal error ...: OSError: [Errno 28] No space left on device``, exit 70, the run aborted
    at iteration 2. After: one warning line per refused checkpoint, the run finishes with its output."""
    output = tmp_path / "out.png"
    checkpoint_bytes = 36 * 48 * 3 * 4  # float32 RGB at 48x36: larger than the PNG output
    env = {**os.environ, "STYLIZE_HOME": str(tmp_path / "home")}  # the speed record: written, small
    result = subprocess.run([sys.executable, "-c", "from stylize.cli.main import cli; cli(prog_name='stylize')", *cli_args(
        tiny_net, inputs, output, "--iterations", "6", "--checkpoint-every", "2", "-q")],
        capture_output=True, text=True, timeout=120, env=env, preexec_fn=_limit_file_size(checkpoint_bytes // 2))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("stylize: warning:")]
    assert warnings == [f"stylize: warning: could not write the checkpoint at iteration {step} to "
                        f"{checkpoints.path_for(output).name} (File too large); the run goes on" for step in (2, 4, 6)]
    assert "error" not in result.stderr
    assert Image.open(output).size == (48, 36)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.png"]  # nothing half-written


def test_an_output_the_disk_refuses_keeps_the_last_checkpoint_to_resume_from(tmp_path, tiny, inputs, monkeypatch):
    """The output's write fails as ``save_image`` reports a full disk (its OSError as an ImageError, exit 3)."""
    from stylize.core.run import job as jobs

    output = tmp_path / "out.png"
    real = jobs.save_image

    def full_disk(image, path, **kwargs):
        if Path(path) == output:
            raise ImageError(f"{path}: cannot write image (No space left on device)")
        return real(image, path, **kwargs)

    monkeypatch.setattr(jobs, "save_image", full_disk)
    with pytest.raises(ImageError, match="No space left on device"):
        Job(*inputs, output=output, iterations=12, checkpoint_every=5, **tiny).run()
    assert not output.exists() and checkpoints.load(checkpoints.path_for(output)).step == 10
    monkeypatch.setattr(jobs, "save_image", real)
    resumed = Job(*inputs, output=output, iterations=12, checkpoint_every=5, resume=True, **tiny)
    assert resumed.first_step == 10
    resumed.run()
    assert output.exists() and not checkpoints.path_for(output).exists()
