"""Options from a TOML file (--config) and STYLIZE_* variables: command line > env > file > preset > default.

The pipeline is replaced by a stub that records the Settings it is given,
so each case costs only the option handling and reading two tiny images.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.cli.config import env_name
from stylize.cli.main import cli
from stylize.cli.run import run
from stylize.core.run import pipeline
from stylize.core.errors import UsageError
from stylize.core.request.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No STYLIZE_* option variables from the calling shell (STYLIZE_HOME stays: it is the cache)."""
    for name in list(os.environ):
        if name.startswith("STYLIZE_") and name != "STYLIZE_HOME":
            monkeypatch.delenv(name)


@pytest.fixture
def runs(tmp_path, monkeypatch, replace_transfer):
    """``runs(*args, env=..., config=...)`` -> (result, Settings given to the pipeline, or None)."""
    rng = np.random.default_rng(0)
    for name in ("content", "style", "style2"):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    seen = []

    def record(content, style, settings, callback=None, **kwargs):
        seen.append(settings)
        return content

    replace_transfer(record)
    count = iter(range(1000))

    def invoke(*args, env=None, config=None, inputs=True):
        seen.clear()
        if config is not None:
            (tmp_path / "run.toml").write_text(config)
            args = ("--config", str(tmp_path / "run.toml"), *args)
        if inputs:
            args = ("-c", str(tmp_path / "content.png"), "-s", str(tmp_path / "style.png"),
                    "-o", str(tmp_path / f"out{next(count)}.png"), *args)
        result = CliRunner().invoke(cli, ["run", "-q", *args], env=env, prog_name="stylize")
        return result, (seen[0] if seen else None)

    invoke.folder = tmp_path
    return invoke


def ok(pair):
    result, settings = pair
    assert result.exit_code == 0, (result.output, result.exception)
    assert settings is not None
    return settings


def one_line_usage_error(result, *fragments):
    assert result.exit_code == UsageError.exit_code, (result.output, result.exception)
    assert result.stderr.startswith("stylize: error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


# -- precedence ------------------------------------------------------------------

def test_default(runs):
    assert ok(runs()).iterations == Settings().iterations == 320


def test_config_file_beats_default(runs):
    settings = ok(runs(config="iterations = 7\nratio = 3e3\nloss = ['gram', 'tv']\nstyle-scale = 2\n"))
    assert (settings.iterations, settings.ratio, tuple(settings.losses), settings.style_scale) == \
        (7, 3e3, ("gram", "tv"), 2.0)


def test_environment_beats_config_file(runs):
    settings = ok(runs(config="iterations = 7\nratio = 3e3\n", env={"STYLIZE_ITERATIONS": "9"}))
    assert (settings.iterations, settings.ratio) == (9, 3e3)


def test_command_line_beats_environment_and_config_file(runs):
    settings = ok(runs("-n", "11", config="iterations = 7\n", env={"STYLIZE_ITERATIONS": "9"}))
    assert settings.iterations == 11


def test_preset_fills_in_below_config_and_environment(runs):
    photo = ok(runs("--preset", "photo"))
    assert (tuple(photo.losses), photo.ratio) == (("gram", "affine"), 1e5)
    settings = ok(runs(config="preset = 'photo'\nratio = 5e3\n", env={"STYLIZE_LOSS": "gram tv"}))
    assert (tuple(settings.losses), settings.ratio, settings.init) == (("gram", "tv"), 5e3, "distribution")


def test_plugin_options_combine_key_by_key_across_sources(runs):
    config = "[set.tv]\nweight = 1e5\n[set.adam]\nlr = 1\nbeta1 = 0.8\n"
    used = ("--optimizer", "adam", "--loss", "gram", "--loss", "tv")
    settings = ok(runs(*used, "--set", "adam.lr=2", config=config,
                       env={"STYLIZE_SET": "tv.weight=7 gram.weight=3"}))
    assert settings.options["adam"] == {"lr": 2, "beta1": 0.8}  # command line over file, per key
    assert settings.options["tv"] == {"weight": 7} and settings.options["gram"] == {"weight": 3}  # env over file
    assert ok(runs(*used, config=config)).options["tv"] == {"weight": 1e5}


# -- what each source can hold ----------------------------------------------------

def test_environment_values_of_every_kind(runs):
    style2 = str(runs.folder / "style2.png")
    settings = ok(runs(env={"STYLIZE_LOSS": "gram tv", "STYLIZE_LENGTH": "64", "STYLIZE_PRESERVE_COLORS": "1",
                            "STYLIZE_SET": "tv.weight=2 gram.weight=3", "STYLIZE_SEED": "5",
                            "STYLIZE_STYLE_WEIGHTS": "3,1"},
                       inputs=False, *["-c", str(runs.folder / "content.png"), "-s",
                                       str(runs.folder / "style.png"), "-s", style2,
                                       "-o", str(runs.folder / "env.png")]))
    assert tuple(settings.losses) == ("gram", "tv") and settings.length == 64 and settings.preserve_colors
    assert settings.options["tv"] == {"weight": 2} and settings.options["gram"] == {"weight": 3}
    assert settings.seed == 5 and settings.style_weights == [3.0, 1.0]


def test_config_can_name_the_images_and_plugin_options(runs):
    folder = runs.folder
    config = (f"content = '{folder / 'content.png'}'\nstyle = ['{folder / 'style.png'}', '{folder / 'style2.png'}']\n"
              f"output = '{folder / 'from-config.png'}'\npreserve_colors = true\nloss = ['gram', 'tv']\n")
    settings = ok(runs(config=config + "set = ['tv.weight=2']\n", inputs=False))
    assert settings.preserve_colors and (folder / "from-config.png").exists()
    assert settings.options["tv"] == {"weight": 2}
    table = "[set.tv]\nweight = 1e5\nlayers = ['conv1_1', 'conv2_1']\n[set.lbfgs]\nhistory = 5\n"
    settings = ok(runs("--force", config=config + table, inputs=False))
    assert settings.options["tv"] == {"weight": 1e5, "layers": "conv1_1,conv2_1"}
    assert settings.options["lbfgs"] == {"history": 5}


def test_config_file_from_the_environment(runs):
    (runs.folder / "other.toml").write_text("length = 48\n")
    assert ok(runs(env={"STYLIZE_CONFIG": str(runs.folder / "other.toml")})).length == 48


def test_stylize_home_is_not_an_option(runs, tmp_path):
    assert "STYLIZE_HOME" not in {env_name(p) for p in run.params if p.opts[0].startswith("-")}
    assert ok(runs(env={"STYLIZE_HOME": str(tmp_path / "cache")})) == ok(runs())


def test_every_option_has_its_variable():
    names = {p.name: p.envvar for p in run.params if getattr(p, "expose_value", False)}
    assert names["iterations"] == "STYLIZE_ITERATIONS" and names["styles"] == "STYLIZE_STYLE"
    assert names["losses"] == "STYLIZE_LOSS" and names["save_every"] == "STYLIZE_SAVE_EVERY"
    assert all(value.startswith("STYLIZE_") for value in names.values())


# -- mistakes: one line naming the key or the variable -----------------------------

@pytest.mark.parametrize("config, fragments", [
    ("iteratons = 5\n", ["unknown key 'iteratons'", "iterations"]),
    ("iterations = 'many'\n", ["iterations = 'many'", "expected an integer"]),
    ("iterations = 1.5\n", ["iterations = 1.5", "expected an integer"]),
    ("ratio = true\n", ["ratio = True", "expected a number"]),
    ("loss = 3\n", ["loss = 3", "expected a string or a list of them"]),
    ("quiet = 'yes'\n", ["quiet = 'yes'", "expected true or false"]),
    ("save-every = 0\n", ["save-every = 0", "0 is not in the range"]),
    ("pooling = 'min'\n", ["pooling = 'min'", "'min' is not one of"]),
    ("[set]\ntv = 3\n", ["set.tv = 3", "expected a table"]),
    ("iterations = \n", ["not valid TOML"]),
])
def test_bad_config_is_one_line(runs, config, fragments):
    result, settings = runs(config=config)
    one_line_usage_error(result, *fragments)
    assert settings is None


def test_missing_config_file(runs):
    result, _ = runs("--config", str(runs.folder / "nowhere.toml"))
    one_line_usage_error(result, "nowhere.toml", "no such file")


@pytest.mark.parametrize("env, fragments", [
    ({"STYLIZE_ITERATIONS": "abc"}, ["STYLIZE_ITERATIONS='abc'", "not a valid integer"]),
    ({"STYLIZE_QUIET": "maybe"}, ["STYLIZE_QUIET='maybe'"]),
    ({"STYLIZE_SAVE_EVERY": "0"}, ["STYLIZE_SAVE_EVERY='0'"]),
])
def test_bad_environment_is_one_line(runs, env, fragments):
    result, settings = runs(env=env)
    one_line_usage_error(result, *fragments)
    assert settings is None
