"""Crash consistency of checkpoints: kill -9 a real ``stylize run`` at seeded random moments, resume each time.

    .venv/bin/python bench/crash.py [--kills 30] [--iterations 200] [--seed 1] [--json FILE]

Each segment is a real ``stylize run --resume`` process (the tiny network,
48 px, ``--checkpoint-every 1`` so that checkpoint writes are a large
share of its time): once it has written a checkpoint past the one it
resumed from, it is sent SIGKILL after a random delay (seeded), which lands
anywhere: in an iteration, inside a checkpoint write (seen afterwards as a
hidden temporary file it left), between a write's renames. After each kill
the checkpoint must load (the latest generation, or the previous one, said),
no output may exist, and the next segment resumes. Then:

- every resume completes and the last one writes the output, leaving no
  checkpoint, previous generation or temporary file;
- the final image equals, bit for bit, a reference chain killed right after
  the same checkpoints (a deterministic stop in ``Checkpoint.save``): what
  the kills left behind changed nothing;
- against one uninterrupted run the final image differs by what restarting
  L-BFGS's history at each resume changes (printed: the mean and largest
  difference in 8-bit levels).

tests/test_crash_consistency.py runs the same with 3 kills.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stylize.core.run import checkpoint as checkpoints  # noqa: E402
from stylize.core.errors import ImageError  # noqa: E402

#: The real command; with $STYLIZE_CRASH_AT=N it kills itself (SIGKILL) right after writing checkpoint N.
WRAPPER = textwrap.dedent("""
    import os, signal
    from stylize.core.run import checkpoint
    at = int(os.environ.get("STYLIZE_CRASH_AT") or 0)
    if at:
        save = checkpoint.Checkpoint.save
        def save_then_die(self, path):
            written = save(self, path)
            if self.step == at:
                os.kill(os.getpid(), signal.SIGKILL)
            return written
        checkpoint.Checkpoint.save = save_then_die
    from stylize.cli.main import cli
    cli(prog_name="stylize")
""")
#: Seconds a segment may take to make progress, and the longest random delay before a kill.
PATIENCE, WINDOW = 120.0, 0.25


def inputs(folder: Path) -> tuple[list[str], Path]:
    """The tiny network and two random images in ``folder``; the run's arguments (less -o) and its output."""
    from tests.tinynet import write_tiny_net

    prototxt, weights = write_tiny_net(folder)
    rng = np.random.default_rng(0)
    for name in ("content", "style"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    args = ["run", "-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
            "--style-layers", "conv1,conv2", "-c", str(folder / "content.png"), "-s", str(folder / "style.png"),
            "-l", "48", "--scales", "1", "--threads", "1", "--tol", "0", "--checkpoint-every", "1", "-q",
            "--init", "noise", "--seed", "1"]
    return args, folder / "out"


def command(args: list[str], output: Path, iterations: int) -> list[str]:
    return [sys.executable, "-c", WRAPPER, *args, "--iterations", str(iterations), "-o", str(output), "--resume"]


def leftovers(output: Path) -> list[str]:
    """Hidden temporary files beside the output: what a kill inside a write leaves."""
    return sorted(p.name for p in output.parent.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


def killed_chain(args: list[str], output: Path, iterations: int, kills: int, seed: int) -> dict:
    """Kill the run ``kills`` times at random moments, resuming each time; then let it finish."""
    rng = random.Random(seed)
    path = checkpoints.path_for(output)
    resumed, inside_write, previous_used, finished = [], 0, 0, False
    for _ in range(kills):
        before = checkpoints.step_of(path) or 0
        process = subprocess.Popen(command(args, output, iterations), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + PATIENCE
        while (checkpoints.step_of(path) or 0) <= before and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("a segment made no progress")
            time.sleep(0.002)
        time.sleep(rng.uniform(0, WINDOW))
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.returncode == 0:
            finished = True  # it finished before the kill: nothing left to resume
            break
        assert process.returncode == -signal.SIGKILL, process.stderr.read()
        inside_write += bool(leftovers(output))
        try:
            checkpoint = checkpoints.load(path)
        except ImageError as e:
            raise AssertionError(f"after a kill the checkpoint does not load: {e}") from None
        previous_used += checkpoint.note is not None
        assert not output.exists(), "an output was written by a killed run"
        resumed.append(checkpoint.step)
    if not finished:
        final = subprocess.run(command(args, output, iterations), capture_output=True, text=True, timeout=PATIENCE)
        assert final.returncode == 0, final.stderr
    left = [p.name for p in output.parent.iterdir() if p.name != output.name and p.name.startswith(
        (output.name, f".{output.name}"))]
    return {"resumed_from": resumed, "kills": len(resumed), "inside_checkpoint_write": inside_write,
            "previous_generation_used": previous_used, "left_after_finish": left,
            "image": np.asarray(Image.open(output)).astype(np.int16)}


def reference_chain(args: list[str], output: Path, iterations: int, steps: list[int]) -> np.ndarray:
    """The same resumes, each segment stopped right after writing the checkpoint the killed one resumed from."""
    for step in steps:
        result = subprocess.run(command(args, output, iterations), capture_output=True, text=True,
                                timeout=PATIENCE, env={**os.environ, "STYLIZE_CRASH_AT": str(step)})
        assert result.returncode == -signal.SIGKILL and checkpoints.step_of(checkpoints.path_for(output)) == step, \
            result.stderr
    final = subprocess.run(command(args, output, iterations), capture_output=True, text=True, timeout=PATIENCE)
    assert final.returncode == 0, final.stderr
    return np.asarray(Image.open(output)).astype(np.int16)


def uninterrupted(args: list[str], output: Path, iterations: int) -> np.ndarray:
    result = subprocess.run(command(args, output, iterations), capture_output=True, text=True, timeout=PATIENCE)
    assert result.returncode == 0, result.stderr
    return np.asarray(Image.open(output)).astype(np.int16)


def _cpu_of_children() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def crash_test(folder: Path, kills: int, iterations: int, seed: int, against_whole: bool = True) -> dict:
    """Everything the module docstring says, in ``folder``; the figures (images as their differences).
    ``against_whole=False`` leaves out the uninterrupted run (its figures are None)."""
    args, out = inputs(folder)
    for name in ("killed", "reference", "whole"):
        (out / name).mkdir(parents=True)
    started = time.monotonic()
    chain = killed_chain(args, out / "killed" / "out.png", iterations, kills, seed)
    reference = reference_chain(args, out / "reference" / "out.png", iterations, chain["resumed_from"])
    image = chain.pop("image")
    difference = np.abs(image - uninterrupted(args, out / "whole" / "out.png", iterations)) if against_whole else None
    return {**chain, "iterations": iterations, "seed": seed,
            "equal_to_reference_chain": bool(np.array_equal(image, reference)),
            "vs_uninterrupted_mean_levels": None if difference is None else round(float(difference.mean()), 3),
            "vs_uninterrupted_max_levels": None if difference is None else int(difference.max()),
            "wall_seconds": round(time.monotonic() - started, 1), "cpu_seconds_of_runs": round(_cpu_of_children(), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        report = crash_test(Path(folder), options.kills, options.iterations, options.seed)
    for key, value in report.items():
        print(f"{key}: {value}")
    if options.json:
        options.json.write_text(json.dumps(report, indent=2) + "\n")
    ok = report["equal_to_reference_chain"] and not report["left_after_finish"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
