"""The ``stylize`` command through click's CliRunner.

Every bad input must end as one ``stylize: error:`` line on stderr with the
exit code of its error class, and leave nothing in the output folder.
click >= 8.2 keeps stderr apart: ``result.stdout`` and ``result.stderr``
are separate, ``result.output`` is both as a terminal would show them.
"""
from __future__ import annotations

import json
import os

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize import __version__
from stylize.backends import cuda, zoo
from stylize.cli.main import cli
from stylize.core import errors
from stylize.core.errors import ImageError, ModelError, PluginError, StylizeError, UsageError

CLICK_USAGE_EXIT = 2  # click's own UsageError (bad option syntax or type)


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), prog_name="stylize", **kwargs)


def assert_one_line_error(result, exit_code: int, *fragments: str) -> str:
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert "Traceback" not in result.output
    message = result.stderr
    assert message.startswith("stylize: error: "), message
    assert message.endswith("\n") and message.count("\n") == 1, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@pytest.fixture
def images(tmp_path):
    """Small random RGB inputs in tmp_path/in, and an output folder that does not exist yet."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = {}
    for name in ("content", "style"):
        paths[name] = folder / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(paths[name])
    paths["out_dir"] = tmp_path / "out"
    paths["out"] = paths["out_dir"] / "result.png"
    return paths


def run_args(images, *extra: str, content=None, style=None, output=None) -> list[str]:
    return ["run", "-c", str(content or images["content"]), "-s", str(style or images["style"]),
            "-o", str(output or images["out"]), *extra]


def assert_nothing_written(images):
    out_dir = images["out_dir"]
    assert not out_dir.exists() or os.listdir(out_dir) == []
    inputs = set(os.listdir(images["content"].parent))
    assert {"content.png", "style.png"} <= inputs
    assert not any(name.endswith(".tmp") or name.startswith(".") for name in inputs)


# -- help and version -----------------------------------------------------------

def command(path: list[str]) -> click.Command:
    cmd = cli
    for name in path:
        cmd = cmd.commands[name]
    return cmd


HELP = {
    (): ["--debug", "--version", "--help", "-h", "run", "models"],
    ("run",): ["-c", "--content", "-s", "--style", "-o", "--output", "-b", "--backend", "--loss",
               "--optimizer", "-r", "--ratio", "-n", "--iterations", "-l", "--length", "-i", "--init",
               "--seed", "--pooling", "-g", "--gpu", "-q", "--quiet", "-h", "--help"],
    ("models",): ["list", "fetch", "--help"],
    ("models", "list"): ["--help"],
    ("models", "fetch"): ["NAME", "--force", "--help"],
}


@pytest.mark.parametrize("path", sorted(HELP), ids=lambda p: " ".join(("stylize",) + p))
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_mentions_every_option(path, flag):
    result = invoke(*path, flag)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    text = result.stdout
    assert text.startswith(f"Usage: stylize {' '.join(path)}".rstrip())
    for word in HELP[path]:
        assert word in text, word
    # Also every option click knows of, so a new option cannot go undocumented.
    for param in command(list(path)).params:
        for opt in param.opts + param.secondary_opts:
            if opt.startswith("-"):
                assert opt in text, opt
        if isinstance(param, click.Option):
            assert param.help, f"{param.name} has no help text"


def test_help_shows_defaults_of_run():
    text = " ".join(invoke("run", "--help").stdout.split())  # as read, whatever the line wrapping
    for default in ("caffe-vgg19", "gram", "lbfgs", "512", "-1", "avg"):
        assert f"[default: {default}]" in text


def test_help_does_not_advertise_missing_commands():
    """Any `stylize X` mentioned in help texts must exist."""
    import re
    for path in HELP:
        text = invoke(*path, "--help").stdout
        for sub in re.findall(r"`stylize (\w+)", text):
            assert sub in cli.list_commands(None), f"help mentions `stylize {sub}`, which does not exist"


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_no_command_shows_usage():
    result = invoke()
    assert result.exit_code in (0, 2)  # click 8.2+ exits 2 when a group gets no command
    assert "Usage: stylize" in result.output


# -- exit codes -----------------------------------------------------------------

def test_error_classes_have_distinct_nonzero_exit_codes():
    classes = [StylizeError, UsageError, ImageError, ModelError, PluginError, errors.NumericalError,
               errors.ResourceError]
    codes = [cls.exit_code for cls in classes]
    assert codes == [1, 2, 3, 4, 5, 6, 7]
    assert all(issubclass(cls, StylizeError) for cls in classes)
    assert {name for name, obj in vars(errors).items()
            if isinstance(obj, type) and issubclass(obj, StylizeError)} == {c.__name__ for c in classes}


# -- bad inputs to `stylize run` -------------------------------------------------

def test_missing_content(images):
    result = invoke(*run_args(images, content=images["content"].parent / "missing.jpg"))
    assert_one_line_error(result, ImageError.exit_code, "missing.jpg", "no such file")
    assert_nothing_written(images)


def test_missing_style(images):
    result = invoke(*run_args(images, style=images["content"].parent / "gone.png"))
    assert_one_line_error(result, ImageError.exit_code, "gone.png", "no such file")
    assert_nothing_written(images)


def test_content_is_a_directory(images):
    result = invoke(*run_args(images, content=images["content"].parent))
    assert_one_line_error(result, ImageError.exit_code, "is a directory")
    assert_nothing_written(images)


def test_content_is_a_text_file_named_jpg(images):
    fake = images["content"].parent / "notes.jpg"
    fake.write_text("this is not a picture\n")
    result = invoke(*run_args(images, content=fake))
    assert_one_line_error(result, ImageError.exit_code, "notes.jpg", "not an image")
    assert_nothing_written(images)


@pytest.mark.parametrize("name", ["result.gif", "result", "result.webp"])
def test_unsupported_output_extension(images, name):
    result = invoke(*run_args(images, output=images["out_dir"] / name))
    assert_one_line_error(result, ImageError.exit_code, "unsupported output extension", ".png", ".jpg")
    assert_nothing_written(images)


@pytest.mark.parametrize("name", ["out", "folder.png"])
def test_output_is_an_existing_directory(images, name):
    target = images["out_dir"] / name
    target.mkdir(parents=True)
    result = invoke(*run_args(images, output=target))
    assert_one_line_error(result, ImageError.exit_code, "is a directory")
    assert os.listdir(target) == []
    assert os.listdir(images["out_dir"]) == [name]


@pytest.mark.parametrize("option, value, fragment", [
    ("--iterations", "0", "iterations must be at least 1"),
    ("-n", "-3", "iterations must be at least 1"),
    ("--length", "0", "length must be at least 1"),
    ("-l", "-64", "length must be at least 1"),
    ("--ratio", "0", "ratio must be a positive number"),
    ("-r", "-1e4", "ratio must be a positive number"),
    ("-r", "nan", "ratio must be a positive number"),
    ("-r", "inf", "ratio must be a positive number"),
])
def test_out_of_range_numbers(images, option, value, fragment):
    result = invoke(*run_args(images, option, value))
    assert_one_line_error(result, UsageError.exit_code, fragment)
    assert_nothing_written(images)


@pytest.mark.parametrize("option, value", [("-n", "ten"), ("--length", "1.5"), ("-r", "lots"),
                                           ("--gpu", "first"), ("--pooling", "min")])
def test_non_numeric_values_are_click_usage_errors(images, option, value):
    result = invoke(*run_args(images, option, value))
    assert result.exit_code == CLICK_USAGE_EXIT
    assert "Invalid value" in result.stderr and option in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert_nothing_written(images)


def test_missing_required_option(images):
    result = invoke("run", "-c", str(images["content"]), "-o", str(images["out"]))
    assert result.exit_code == CLICK_USAGE_EXIT
    assert "Missing option" in result.stderr and "--style" in result.stderr
    assert_nothing_written(images)


@pytest.mark.parametrize("option, value, kind, suggestion", [
    ("--backend", "caffe-vgg", "backend", "caffe-vgg19"),
    ("-b", "vgg", "backend", "caffe-vgg16"),
    ("--loss", "gramm", "loss", "gram"),
    ("--loss", "contnt", "loss", "content"),
    ("--optimizer", "lbfg", "optimizer", "lbfgs"),
])
def test_unknown_plugin_suggests_the_closest_name(images, option, value, kind, suggestion):
    result = invoke(*run_args(images, option, value))
    assert_one_line_error(result, PluginError.exit_code, f"unknown {kind} {value!r}",
                          f"did you mean {suggestion!r}?")
    assert_nothing_written(images)


def test_unknown_second_loss(images):
    result = invoke(*run_args(images, "--loss", "content", "--loss", "grammm"))
    assert_one_line_error(result, PluginError.exit_code, "unknown loss 'grammm'", "'gram'")
    assert_nothing_written(images)


def test_unknown_plugin_fails_before_reading_images(images):
    """A typo is reported even when the images are also wrong: no work is wasted."""
    result = invoke(*run_args(images, "--loss", "gramm", content=images["out_dir"] / "missing.png"))
    assert_one_line_error(result, PluginError.exit_code, "did you mean 'gram'?")


@pytest.mark.parametrize("gpu", ["0", "1"])
def test_gpu_is_a_clear_cpu_only_error(images, gpu):
    result = invoke(*run_args(images, "--gpu", gpu))
    assert_one_line_error(result, UsageError.exit_code, f"GPU {gpu}", cuda.refusal_words(), "--gpu -1")
    assert_nothing_written(images)


def test_missing_weights_name_the_fetch_command(images, tmp_path, monkeypatch):
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("STYLIZE_HOME", str(home))
    result = invoke(*run_args(images, "-l", "32", "-n", "2"))
    message = assert_one_line_error(result, ModelError.exit_code, "stylize models fetch vgg19")
    assert str(home) in message
    assert_nothing_written(images)
    assert os.listdir(home) == []  # nothing downloaded or created


def test_bad_init_path(images):
    result = invoke(*run_args(images, "-l", "32", "-n", "2", "--init", "nowhere.png"))
    assert_one_line_error(result, UsageError.exit_code, "--init", "nowhere.png")
    assert_nothing_written(images)


def test_debug_shows_the_exception_instead(images):
    result = invoke("--debug", *run_args(images, content=images["content"].parent / "missing.jpg"))
    assert isinstance(result.exception, ImageError)
    assert "stylize: error:" not in result.stderr


def test_interrupt_is_one_line_and_writes_nothing(images, replace_transfer):
    from stylize.core.run import pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    replace_transfer(interrupted)
    result = invoke(*run_args(images, "-q"))
    assert result.exit_code == 130
    assert result.stderr == "stylize: interrupted; no output written\n"
    assert_nothing_written(images)


# -- successful runs (real VGG19, tiny images) ----------------------------------

@pytest.fixture
def weights_installed():
    if not zoo.weights_path("vgg19").is_file():
        pytest.fail(f"{zoo.weights_path('vgg19')} missing: run `make setup`")


def test_tiny_run_writes_png_with_settings(images, weights_installed):
    result = invoke(*run_args(images, "-l", "32", "-n", "2", "-q"))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    assert os.listdir(images["out_dir"]) == ["result.png"]  # no temporary files
    with Image.open(images["out"]) as img:
        img.load()
        assert img.format == "PNG"
        assert img.size == (32, 24)  # 40x30 scaled to a long side of 32
        assert img.mode == "RGB"
        settings = json.loads(img.text["stylize:settings"])
        assert img.text["Software"] == "stylize"
        assert img.text["stylize:content"] == str(images["content"])
        assert img.text["stylize:style"] == str(images["style"])
    assert (settings["backend"], settings["iterations"], settings["length"]) == ("caffe-vgg19", 2, 32)


def test_run_with_progress_writes_jpeg_in_new_folders(images, weights_installed):
    target = images["out_dir"] / "a" / "b" / "result.jpg"
    result = invoke(*run_args(images, "-l", "24", "-n", "2", "--loss", "gram", "--init", "noise",
                              "--seed", "1", output=target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "stylizing" in result.stderr
    assert f"wrote {target} (24x18," in result.stderr
    assert os.listdir(target.parent) == ["result.jpg"]
    with Image.open(target) as img:
        assert img.format == "JPEG" and img.size == (24, 18)


# -- `stylize models` -----------------------------------------------------------

def test_models_list_with_empty_home_shows_vgg19_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    vgg = [line for line in lines if line.startswith("vgg19")]
    assert len(vgg) == 1
    assert "missing" in vgg[0] and "stylize models fetch vgg19" in vgg[0]
    assert "installed" not in vgg[0]
    assert os.listdir(tmp_path) == []  # listing creates nothing


def test_models_list_shows_installed_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg19.caffemodel").write_bytes(b"weights")
    result = invoke("models", "list")
    assert result.exit_code == 0
    vgg = [line for line in result.stdout.splitlines() if line.startswith("vgg19")][0]
    assert "installed" in vgg and str(tmp_path / "models" / "vgg19.caffemodel") in vgg
    assert "missing" not in vgg


def test_models_fetch_does_nothing_when_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    weights = tmp_path / "models" / "vgg19.caffemodel"
    weights.write_bytes(b"weights")

    def no_download():
        raise AssertionError("fetch must not download installed weights")

    monkeypatch.setattr(zoo, "fetch", lambda name, source=None: no_download())
    result = invoke("models", "fetch", "vgg19")
    assert result.exit_code == 0, result.output
    assert "already installed" in result.stdout and str(weights) in result.stdout
    assert weights.read_bytes() == b"weights"


def test_models_fetch_force_fetches_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "vgg19.caffemodel").write_bytes(b"weights")
    fetched = []
    monkeypatch.setattr(zoo, "fetch", lambda name, source=None: fetched.append(name) or zoo.weights_path(name))
    result = invoke("models", "fetch", "--force", "vgg19")
    assert result.exit_code == 0, result.output
    assert fetched == ["vgg19"]
    assert "fetching vgg19" in result.stderr
    assert "installed vgg19 at" in result.stdout


def test_models_fetch_unknown_name(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    result = invoke("models", "fetch", "nosuch")
    assert_one_line_error(result, ModelError.exit_code, "unknown model 'nosuch'", "vgg19")
    assert os.listdir(tmp_path) == []


def test_models_fetch_needs_a_name():
    result = invoke("models", "fetch")
    assert result.exit_code == CLICK_USAGE_EXIT
    assert "Missing argument" in result.stderr


def test_save_every_writes_numbered_snapshots_and_ctrl_c_keeps_the_image(images, replace_transfer, weights_installed):
    from PIL import Image

    from stylize.core.run import pipeline

    result = invoke(*run_args(images, "-q", "-l", "32", "-n", "4", "--scales", "1", "--save-every", "2"))
    assert result.exit_code == 0, result.output
    out = images["out"]
    snapshots = sorted(p.name for p in out.parent.glob(f"{out.stem}-*{out.suffix}"))
    assert snapshots == [f"{out.stem}-0002{out.suffix}", f"{out.stem}-0004{out.suffix}"]
    assert Image.open(out.with_name(snapshots[0])).text["stylize:step"] == "2"

    real_transfer = pipeline.transfer

    def interrupted_after_two(content, style, settings, callback, **masks):
        def stop(result):
            callback(result)
            if result.step == 2:
                raise KeyboardInterrupt
        return real_transfer(content, style, settings, callback=stop, **masks)

    out.unlink()
    replace_transfer(interrupted_after_two)
    result = invoke(*run_args(images, "-q", "-l", "32", "-n", "10", "--scales", "1"))
    assert result.exit_code == 130
    assert "interrupted at iteration 2/10" in result.stderr and out.exists()
    assert Image.open(out).text["stylize:step"] == "2"


def test_nan_in_the_objective_stops_with_a_message_and_keeps_the_last_good_image(
        images, monkeypatch, weights_installed):
    from stylize.core.errors import NumericalError
    from stylize.losses.gram import GramLoss

    real_call = GramLoss.__call__
    calls = []

    def turns_nan(self, features):
        calls.append(1)
        value, grads = real_call(self, features)
        return (float("nan"), grads) if len(calls) > 4 else (value, grads)

    monkeypatch.setattr(GramLoss, "__call__", turns_nan)
    result = invoke(*run_args(images, "-q", "-l", "32", "-n", "20", "--scales", "1"))
    message = assert_one_line_error(result, NumericalError.exit_code, "nan", "last good image")
    assert images["out"].exists(), message
    assert len(list(images["out_dir"].iterdir())) == 1
