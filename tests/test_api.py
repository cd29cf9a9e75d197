"""The Python API (``from stylize import stylize``) with the tiny network: same pipeline, defaults and files as the CLI."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import stylize as package
from stylize import Interrupted, Settings, load_inputs, stylize, transfer
from stylize.cli.main import cli
from stylize.core.run import checkpoint as checkpoints
from stylize.core.run import pipeline
from stylize.core.errors import UsageError
from stylize.core.io.images import to_uint8


@pytest.fixture
def tiny(tiny_net):
    """Settings for the tiny network, as keyword arguments."""
    prototxt, weights = tiny_net
    return dict(backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"],
                options={"caffe": {"prototxt": prototxt, "weights": weights}}, length=32, iterations=4,
                scales=1, threads=1)


@pytest.fixture
def pictures(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for name in ("content", "style", "style2")}
    paths = {}
    for name, array in arrays.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(array).save(paths[name])
    return arrays, paths


def test_exports():
    from stylize.core.io import inputs
    from stylize.core.run import job
    from stylize.core.request import settings
    assert {"stylize", "Settings", "transfer", "load_inputs", "Interrupted", "Job", "Cancelled",
            "events"} <= set(package.__all__)
    assert (Settings, transfer, load_inputs) == (settings.Settings, pipeline.transfer, inputs.load_inputs)
    assert (package.Job, package.Cancelled, package.Interrupted) == (job.Job, job.Cancelled, job.Interrupted)


def test_paths_or_arrays_in_an_array_out_with_a_callback(tiny, pictures):
    arrays, paths = pictures
    steps = []
    image = stylize(arrays["content"], paths["style"], callback=lambda r: steps.append((r.step, r.image.shape)),
                    **tiny)
    assert image.shape == (24, 32, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert steps == [(i, (24, 32, 3)) for i in range(1, 5)]
    # A float array in [0, 1] is the same picture as its uint8 file.
    again = stylize(arrays["content"].astype(np.float32) / 255, paths["style"], **tiny)
    assert np.array_equal(image, again)


def test_several_styles_and_a_preset(tiny, pictures, replace_transfer):
    arrays, paths = pictures
    image = stylize(paths["content"], [paths["style"], arrays["style2"]], style_weights=[3, 1], **tiny)
    assert image.shape == (24, 32, 3)
    seen = []
    real = pipeline.transfer

    def record(content, style, settings, **kwargs):
        seen.append(settings)
        return real(content, style, settings, **kwargs)

    replace_transfer(record)
    stylize(paths["content"], paths["style"], preset="photo", **{**tiny, "ratio": 50.0})
    assert tuple(seen[0].losses) == ("gram", "affine") and seen[0].ratio == 50.0  # given beats the preset


def test_output_file_is_the_cli_output(tiny, pictures, tmp_path):
    """The CLI is a thin layer over the API: same options, same pixels, same metadata."""
    _, paths = pictures
    prototxt, weights = tiny["options"]["caffe"]["prototxt"], tiny["options"]["caffe"]["weights"]
    by_api = stylize(paths["content"], paths["style"], output=tmp_path / "api.png", **tiny)
    result = CliRunner().invoke(cli, [
        "run", "-q", "-c", str(paths["content"]), "-s", str(paths["style"]), "-o", str(tmp_path / "cli.png"),
        "-b", "caffe", "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2",
        "--style-layers", "conv1,conv2", "-l", "32", "-n", "4", "--scales", "1", "--threads", "1"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "api.png") as api, Image.open(tmp_path / "cli.png") as command:
        assert np.array_equal(np.asarray(api), to_uint8(by_api))
        assert np.array_equal(np.asarray(api), np.asarray(command))
        assert set(api.text) == set(command.text) >= {"Software", "stylize:settings", "stylize:content"}
        assert api.text["stylize:content"] == command.text["stylize:content"] == str(paths["content"])
        assert json.loads(api.text["stylize:settings"])["iterations"] == 4
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["api.png", "cli.png", "content.png", "style.png",
                                                              "style2.png"]  # checkpoints removed


def test_defaults_are_the_cli_defaults(pictures, tmp_path, monkeypatch, replace_transfer):
    _, paths = pictures
    seen = []
    replace_transfer(lambda content, style, settings, **kw: seen.append(settings) or content)
    result = CliRunner().invoke(cli, ["run", "-q", "-c", str(paths["content"]), "-s", str(paths["style"]),
                                      "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 0, result.output
    by_cli = seen.pop()
    assert by_cli.options == {}  # backend flags not given are left to the backend's own defaults
    assert dataclasses.replace(by_cli, losses=tuple(by_cli.losses)) == Settings()
    stylize(paths["content"], paths["style"])
    assert seen.pop() == Settings()


def test_stop_iteration_ends_early_with_the_image_reached(tiny, pictures):
    _, paths = pictures
    steps = []

    def stop_at_two(result):
        steps.append(result.step)
        if result.step == 2:
            raise StopIteration

    image = stylize(paths["content"], paths["style"], callback=stop_at_two, **{**tiny, "iterations": 10})
    assert steps == [1, 2] and image.shape == (24, 32, 3)


def test_seed_makes_noise_runs_reproducible(tiny, pictures):
    _, paths = pictures

    def noise(seed):
        return stylize(paths["content"], paths["style"], init="noise", seed=seed, **tiny)

    first, again, other = noise(3), noise(3), noise(4)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other, atol=1e-3)
    assert not np.array_equal(noise(None), noise(None))  # no seed: fresh noise every run


def test_ctrl_c_then_resume_in_python(tiny, pictures, tmp_path):
    _, paths = pictures
    output = tmp_path / "out" / "r.png"
    settings = {**tiny, "iterations": 8}

    def interrupt_at_three(result):
        if result.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        stylize(paths["content"], paths["style"], output=output, callback=interrupt_at_three,
                checkpoint_every=100, **settings)
    assert caught.value.step == 3 and caught.value.path == output and caught.value.image.shape == (24, 32, 3)
    assert checkpoints.load(checkpoints.path_for(output)).step == 3
    with pytest.raises(UsageError, match="--iterations: 8 in the checkpoint, 9 now"):
        stylize(paths["content"], paths["style"], output=output, resume=True, **{**settings, "iterations": 9})
    steps = []
    image = stylize(paths["content"], paths["style"], output=output, resume=True,
                    callback=lambda r: steps.append(r.step), **settings)
    assert steps == [4, 5, 6, 7, 8] and image.shape == (24, 32, 3)
    assert not checkpoints.path_for(output).exists()
    with Image.open(output) as img:
        assert img.text["stylize:resumed-from"] == "3"


def test_snapshots_into_a_folder(tiny, pictures, tmp_path):
    _, paths = pictures
    stylize(paths["content"], paths["style"], output=tmp_path / "o.png", save_every=2,
            save_dir=tmp_path / "snaps", **tiny)
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["o-0002.png", "o-0004.png"]
    with Image.open(tmp_path / "snaps" / "o-0004.png") as img:
        assert img.text["stylize:step"] == "4" and "stylize:settings" in img.text


@pytest.mark.parametrize("kwargs, error, message", [
    ({"iteratons": 5}, TypeError, "did you mean 'iterations'"),
    ({"save_every": 2}, UsageError, "needs an output path"),
    ({"resume": True}, UsageError, "needs an output path"),
    ({"save_dir": "snaps", "output": "o.png"}, UsageError, "--save-dir needs --save-every"),
])
def test_mistakes(pictures, kwargs, error, message):
    _, paths = pictures
    with pytest.raises(error, match=message):
        stylize(paths["content"], paths["style"], **kwargs)


@pytest.mark.parametrize("array, message", [
    (np.zeros((4, 4, 2), np.uint8), "HxW, HxWx3 or HxWx4"),
    (np.full((4, 4, 3), 255.0, np.float32), r"values in \[0, 1\]"),
    (np.zeros((4, 4, 3), np.int64), "uint8, uint16 or float"),
])
def test_bad_arrays(pictures, array, message):
    _, paths = pictures
    with pytest.raises(UsageError, match=message):
        stylize(array, paths["style"])
