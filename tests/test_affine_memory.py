"""The affine term's memory: declared by the term, counted in the run's estimate, refused before a run."""
from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize import Job
from stylize.cli.main import cli
from stylize.core import IMAGE
from stylize.core.planning import memory
from stylize.core.planning.plan import sizes_at
from stylize.losses.affine import AffineLoss


@pytest.fixture
def tiny(tiny_net):
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, threads=1)


@pytest.mark.parametrize("shape, block, dtype", [
    ((60, 80), None, np.float32),        # one block of window rows
    ((300, 400), None, np.float32),      # two blocks
    ((300, 400), 4000, np.float64),      # blocks smaller than an evaluation's arrays
])
def test_declared_memory_is_at_most_15_percent_above_the_measured_peak(shape, block, dtype, monkeypatch):
    from stylize.losses import affine
    if block:
        monkeypatch.setattr(affine, "BLOCK_WINDOWS", block)
        assert affine.build_bytes(shape) < affine.EVALUATION_BYTES_PER_PIXEL * shape[0] * shape[1]
    image = np.random.default_rng(0).random((*shape, 3)).astype(dtype)
    loss = AffineLoss()
    tracemalloc.start()
    try:
        loss.set_target({IMAGE: image})
        loss({IMAGE: image})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    declared = loss.memory_bytes(shape)
    assert peak <= declared <= 1.15 * peak, (peak, declared)


@pytest.mark.parametrize("tile_size", ["off", 16])
def test_the_run_estimate_counts_the_affine_term_whole_and_tiled(tiny, photos, tile_size, monkeypatch):
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "64GiB")  # the check must run to give its estimate
    # Each network counts the process's resident memory when it loads: the same figure for both runs.
    monkeypatch.setattr("stylize.backends.caffe_net.resident_bytes", lambda: 2 ** 28)
    content, style = photos["coffee"], photos["astronaut"]
    common = dict(length=64, iterations=2, scales=1, tile_size=tile_size, **tiny)
    plain = Job(content, style, losses=["gram"], **common)
    photo = Job(content, style, losses=["gram", "affine"], **common)
    assert (photo.estimate.tiles[-1] is None) == (tile_size == "off")
    extra = photo.estimate.memory_bytes - plain.estimate.memory_bytes
    assert extra == AffineLoss().memory_bytes(photo.plan.final.shape) > 0


def run_photo_preset(tiny_net, photos, tmp_path, limit: int):
    """``stylize run --preset photo`` at 256 px on the tiny network under a memory limit of ``limit`` bytes."""
    paths = {}
    for name in ("coffee", "astronaut"):
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray((photos[name] * 255).astype(np.uint8)).save(paths[name])
    prototxt, weights = tiny_net
    output = tmp_path / "out.png"
    result = CliRunner().invoke(cli, [
        "run", "-c", str(paths["coffee"]), "-s", str(paths["astronaut"]), "-o", str(output),
        "--backend", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
        "--style-layers", "conv1,conv2", "--preset", "photo", "--length", "256", "--scales", "1", "-n", "2",
        "--checkpoint-every", "0"], env={memory.LIMIT_VARIABLE: str(limit)}, prog_name="stylize")
    assert result.exit_code == 7, result.output
    assert not output.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_cli_refuses_the_photo_preset_where_the_laplacian_cannot_be_built(tiny_net, photos, tmp_path):
    limit = 12 * 2 ** 20
    line = run_photo_preset(tiny_net, photos, tmp_path, limit)
    assert line.startswith("stylize: error: not enough memory for the affine term") and "drop it" in line
    # The length it names is the largest (in steps of 32) whose Laplacian fits the limit.
    length = int(re.search(r"built up to --length (\d+)", line).group(1))
    at = lambda n: AffineLoss().memory_bytes(sizes_at(n, photos["coffee"].shape, [], 1.0)[0])  # noqa: E731
    assert at(length) <= limit < at(length + memory.LENGTH_STEP) and length < 256


def test_cli_refusal_of_a_run_the_term_fits_in_but_the_run_does_not_names_its_share(tiny_net, photos, tmp_path):
    shape = sizes_at(256, photos["coffee"].shape, [], 1.0)[0]
    share = AffineLoss().memory_bytes(shape)
    line = run_photo_preset(tiny_net, photos, tmp_path, share + 2 ** 20)  # the network's baseline is over
    assert line.startswith("stylize: error: not enough memory: a 256x171 px run")
    assert f"of which the affine term {memory.format_bytes(share)}" in line
