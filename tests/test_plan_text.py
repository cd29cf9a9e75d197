"""The complete run plan and its one text: what `stylize run --dry-run`, the run's plan line and batch print."""
from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.cli.main import cli
from stylize.core.planning import memory
from stylize.core.run import plan_text
from stylize.core.run.job import Job


@pytest.fixture
def files(pictures, tmp_path):
    paths = {}
    for name, array in zip(("content", "style"), pictures):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray((array * 255).astype(np.uint8)).save(paths[name])
    return paths


def test_the_plan_line_is_the_complete_plans_sum(tiny, pictures, monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "64GiB")
    job = Job(*pictures, length=64, iterations=6, scales=2, **tiny)
    sizes = job.plan
    assert all(level.optimizer is None and level.flops is None for level in sizes.levels)  # no network yet
    estimate = job.estimate
    plan = job.plan  # now the complete plan: each level's evaluation, optimizer and costs
    assert [(level.shape, level.iterations) for level in plan.levels] == \
        [(level.shape, level.iterations) for level in sizes.levels]
    assert all(level.optimizer is not None and level.flops > 0 and level.bytes > 0 for level in plan.levels)
    assert estimate.level_flops == tuple(level.flops for level in plan.levels)
    assert estimate.memory_bytes == plan.final.bytes and estimate.seconds == plan.seconds > 0
    line = plan_text.summary(plan)
    assert line.startswith("planned: 2 scales (32, 64 px), 6 iterations; expected about ")
    assert f"memory about {memory.format_bytes(plan.final.bytes)}" in line
    header, *rows = plan_text.table(plan)
    assert header.split()[:3] == ["scale", "size", "iterations"] and len(rows) == 2
    assert rows[1].split()[:6] == ["2/2", f"{plan.final.shape[1]}x{plan.final.shape[0]}", "3", "whole", "as", "set"]


def test_a_fixed_tile_size_reaches_the_level_that_runs_it(tiny, pictures):
    job = Job(*pictures, length=64, iterations=2, scales=2, tile_size=40, **tiny)
    job.estimate
    first, last = job.plan.levels
    assert first.tiles is None and first.evaluation == "whole"  # 32 px: no larger than the tiles
    assert last.tiles is not None and last.evaluation.startswith("tiled ")
    assert job.estimate.tiles == (None, last.evaluation)


def test_dry_run_prints_the_plan_and_writes_nothing(tiny_net, files, tmp_path):
    prototxt, weights = tiny_net
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, [
        "run", "-c", str(files["content"]), "-s", str(files["style"]), "-o", str(out), "-l", "64", "-n", "4",
        "--scales", "2", "--prototxt", str(prototxt), "--weights", str(weights), "--content-layers", "conv2",
        "--style-layers", "conv1,conv2", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.match(r"planned: 2 scales \(32, 64 px\), 4 iterations", lines[0])
    assert lines[1].split()[0] == "scale" and len(lines) == 4
    assert not out.exists() and not list(tmp_path.glob("*.npz"))
