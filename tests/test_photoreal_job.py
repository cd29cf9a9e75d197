"""The photo preset's pieces in a Job on the tiny network: the colour-transfer start, the affine term's smoothing."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from stylize import Job
from stylize.core.errors import UsageError
from stylize.core.io.images import load_image, resize
from stylize.starts.colour import reinhard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from photoreal_scores import residual  # noqa: E402


def photo_job(tiny, pictures, **given):
    content, style = pictures
    settings = {**tiny, "length": 48, "iterations": 12, "scales": 1, "losses": ("gram", "affine"), "ratio": 1e5,
                **given}
    settings["options"] = {**tiny["options"], **given.get("options", {})}
    return Job(content, style, checkpoint_every=0, **settings)


def test_the_reinhard_start_is_the_first_image(tiny, pictures):
    job = photo_job(tiny, pictures, init="reinhard", iterations=1)
    steps = []
    job.run(lambda event: steps.append(event))
    content = job.inputs.content
    first = reinhard(content, job.inputs.styles)
    assert job.settings.init == "reinhard"
    # One iteration from the start stays near it, far from the content's colours.
    result = steps[-1].image
    assert np.abs(result - first).mean() < 0.5 * np.abs(result - content).mean()


def test_affine_smooth_finishes_the_result_locally_affine(tiny, pictures):
    # From noise with a weak affine term: a result far from locally affine in the content.
    given = dict(init="noise", seed=1)
    plain = photo_job(tiny, pictures, **given, options={"affine": {"weight": 1.0}}).run()
    smoothed = photo_job(tiny, pictures, **given, options={"affine": {"weight": 1.0, "smooth": 1e-3}}).run()
    content = photo_job(tiny, pictures).inputs.content
    assert residual(smoothed, content) < 0.5 * residual(plain, content), (residual(smoothed, content),
                                                                         residual(plain, content))
    # The smoothing keeps the result's colours: it moves texture, not tone.
    assert np.abs(smoothed.mean(axis=(0, 1)) - plain.mean(axis=(0, 1))).max() < 0.02


def test_a_negative_smoothing_strength_is_refused(tiny, pictures):
    with pytest.raises(UsageError, match="affine.smooth"):
        photo_job(tiny, pictures, options={"affine": {"smooth": -1.0}}).run()


def test_the_photo_presets_plugin_options_merge_under_the_users():
    from stylize.core.request.presets import preset
    from stylize.core.request.settings import Settings
    assert preset("photo")["options"]["affine"]["smooth"] > 0
    settings = Settings.from_preset("photo", options={"caffe-vgg19": {"precision": "fp32"}, "affine": {"weight": 1e7}})
    assert settings.options == {"caffe-vgg19": {"precision": "fp32"},
                                "affine": {"smooth": preset("photo")["options"]["affine"]["smooth"], "weight": 1e7}}
    assert Settings.from_preset("photo", options={"affine": {"smooth": 0.0}}).options["affine"]["smooth"] == 0.0
    assert Settings.from_preset("photo").init == "distribution"
    # A loss the user leaves out takes the preset's options for it along.
    assert "affine" not in Settings.from_preset("photo", losses=("gram",)).options


def test_the_photo_preset_on_the_command_line_smooths_unless_told_not_to(tiny_net, photos, tmp_path):
    from click.testing import CliRunner

    from stylize.cli.main import cli
    from stylize.core.io.images import save_image
    content, style = save_image(photos["coffee"], tmp_path / "c.png"), save_image(photos["chelsea"], tmp_path / "s.png")
    prototxt, weights = tiny_net
    base = ["run", "-q", "-c", str(content), "-s", str(style), "-b", "caffe", "--prototxt", prototxt,
            "--weights", weights, "--content-layers", "conv2", "--style-layers", "conv1,conv2", "-l", "40",
            "-n", "3", "--threads", "1", "--preset", "photo"]
    runs = {}
    for name, extra in {"smoothed": [], "plain": ["--set", "affine.smooth=0"], "gram": ["--loss", "gram"]}.items():
        result = CliRunner().invoke(cli, base + ["-o", str(tmp_path / f"{name}.png"), *extra])
        assert result.exit_code == 0, result.output
        runs[name] = load_image(tmp_path / f"{name}.png")
    c = resize(photos["coffee"], runs["plain"].shape[:2])
    assert residual(runs["smoothed"], c) < residual(runs["plain"], c)


def test_the_bench_counts_every_evaluation_of_a_run_and_only_inside_its_block(tiny, pictures):
    """bench/photoreal.py reports a run's cost as its network evaluations (what contention does not inflate)."""
    from photoreal import counting

    from stylize.core.evaluation.objective import Objective
    finish = Objective.finish
    steps = []
    with counting() as evaluations:
        photo_job(tiny, pictures, init="reinhard", iterations=3).run(steps.append)
    assert Objective.finish is finish
    # L-BFGS evaluates at least once per iteration, and its line search may add more.
    iterations = sum(1 for event in steps if type(event).__name__ == "Step")
    assert iterations == 3 and iterations <= evaluations[0] <= 20 * iterations
    counted = evaluations[0]
    photo_job(tiny, pictures, init="reinhard", iterations=2).run()
    assert evaluations[0] == counted  # nothing counted after the block
