"""bench/quality.py's pure logic: configurations from the command line, and when a run reaches a target.

The bench itself (runs, scorers on VGG19 and EfficientNet-Lite0, plots) needs
PyTorch (``make bench-quality-setup``) and minutes; it is validated by
running it (bench/README.md). These tests import none of that.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import quality  # noqa: E402
from quality import ConfigError, parse_config, parse_configs, time_to_reach  # noqa: E402
from quality_report import front_groups  # noqa: E402


@pytest.mark.parametrize("spec, settings, options, levels", [
    ("default", {}, {}, None),
    ("single:scales=1,iterations=160", {"scales": 1, "iterations": 160}, {}, None),
    ("ratio1e3:ratio=1e3", {"ratio": 1000.0}, {}, None),
    ("max:pooling=max", {}, {"caffe-vgg19": {"pooling": "max"}}, None),
    ("g16:backend=caffe-vgg16, pooling=max", {"backend": "caffe-vgg16"}, {"caffe-vgg16": {"pooling": "max"}}, None),
    ("short:levels=100:60:30", {"scales": 3, "iterations": 190}, {}, (100, 60, 30)),
    ("h:lbfgs.history=20,tol=1e-3", {"tol": 0.001}, {"lbfgs": {"history": 20}}, None),
    ("bf:caffe-vgg19.precision=bf16", {}, {"caffe-vgg19": {"precision": "bf16"}}, None),
    ("tv:losses=gram+tv,init=noise", {"losses": ["gram", "tv"], "init": "noise"}, {}, None),
])
def test_a_configuration_becomes_settings_options_and_levels(spec, settings, options, levels):
    config = parse_config(spec)
    assert (config.name, config.settings, config.options, config.levels) == \
        (spec.partition(":")[0], settings, options, levels)


@pytest.mark.parametrize("spec, says", [
    ("bad/name", "a name of letters"),
    ("x:", "nothing after ':'"),
    ("x:iterations", "not KEY=VALUE"),
    ("x:length=256", "give --length instead"),
    ("x:threads=1", "give --threads instead"),
    ("x:levels=10:a", "iterations per level"),
    ("x:scales=2,levels=1:2:3", "scales=2 disagrees with levels"),
    ("x:lbfgs.=3", "PLUGIN.KEY=VALUE"),
])
def test_a_bad_configuration_is_refused_with_what_is_wrong(spec, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(")):
        parse_config(spec)


def test_names_are_unique_and_none_given_means_default():
    assert [c.name for c in parse_configs([])] == ["default"]
    with pytest.raises(ConfigError, match="given twice"):
        parse_configs(["a:ratio=1", "a:ratio=2"])


def test_the_ratio_sweep_is_the_reference_at_each_ratio_and_pooling():
    sweep = quality.ratio_sweep(parse_config("short:levels=20:10,ratio=5"), [1e3, 3e4], ["avg", "max"])
    assert [c.name for c in sweep] == ["avg-r1000", "avg-r30000", "max-r1000", "max-r30000"]
    assert [(c.settings["ratio"], c.options["caffe-vgg19"]["pooling"], c.levels) for c in sweep] == [
        (1000.0, "avg", (20, 10)), (30000.0, "avg", (20, 10)), (1000.0, "max", (20, 10)), (30000.0, "max", (20, 10))]


def test_a_sweep_point_equal_to_an_earlier_configuration_is_not_run_twice():
    configs = parse_configs(["default", "other:ratio=3"]) + quality.ratio_sweep(parse_config("default"), [1e4, 1e3],
                                                                                 ["avg"])
    keys = {"default": {"r": 1e4}, "other": {"r": 3}, "avg-r10000": {"r": 1e4}, "avg-r1000": {"r": 1e3}}
    kept = quality.drop_repeats(configs, keys, swept={"avg-r10000", "avg-r1000"})
    assert [c.name for c in kept] == ["default", "other", "avg-r1000"]


def point(t, vgg=None, effnet=None):
    scores = {}
    if vgg:
        scores["vgg"] = {"style": vgg[0], "content": vgg[1]}
    if effnet:
        scores["effnet"] = {"style": effnet[0], "content": effnet[1]}
    return {"t": t, "scores": scores}


TARGET = point(0, vgg=(0.2, 0.5), effnet=(0.4, 0.8))["scores"]


def test_time_to_reach_is_the_first_time_every_score_is_at_most_the_target():
    points = [point(30, (0.19, 0.5), (0.39, 0.79)),  # listed out of order: time decides
              point(10, (0.3, 0.4), (0.5, 0.7)),
              point(20, (0.2, 0.49), (0.41, 0.7))]  # VGG met (equal counts), EfficientNet's style not yet
    assert time_to_reach(points, TARGET, ("vgg",)) == 20
    assert time_to_reach(points, TARGET, ("effnet",)) == 30
    assert time_to_reach(points, TARGET) == 30


def test_a_run_that_never_meets_the_target_or_lacks_a_score_never_reaches_it():
    # Style improves while content worsens: never both at once.
    assert time_to_reach([point(10, (0.3, 0.4), (0.3, 0.7)), point(20, (0.1, 0.6), (0.3, 0.7))], TARGET) is None
    assert time_to_reach([point(10, vgg=(0.1, 0.1))], TARGET) is None  # no EfficientNet score
    assert time_to_reach([point(10, vgg=(0.1, 0.1))], TARGET, ("vgg",)) == 10


def test_fronts_group_runs_that_differ_only_in_ratio_in_ratio_order():
    def key(ratio, pooling):
        return {"settings": {"ratio": ratio, "options": {"caffe-vgg19": {"pooling": pooling}}}, "levels": [40]}
    names = {"default": key(1e4, "avg"), "avg-r1000": key(1e3, "avg"), "max-r1000": key(1e3, "max"),
             "max-r100000": key(1e5, "max"), "lonely": {**key(1e4, "avg"), "levels": [20]}}
    configs = [parse_config(name) for name in names]
    runs = {("p", name): {"key": k} for name, k in names.items()}
    assert front_groups(configs, runs, "p") == [["avg-r1000", "default"], ["max-r1000", "max-r100000"]]


def test_a_bad_command_line_is_one_line_and_exit_2(capsys):
    assert quality.main(["--config", "x:length=64"]) == 2
    assert quality.main(["--pairs", "nowhere"]) == 2
    assert quality.main(["--config", "a", "--reference", "b"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("quality: error: ") for line in lines)
