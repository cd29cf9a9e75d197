"""`stylize run` options for style blends, colours, masks and presets, down to the Settings they make."""
import numpy as np
import pytest
from PIL import Image

from stylize.core.run import pipeline
from stylize.core.errors import UsageError
from stylize.core.request.presets import QUALITIES
from stylize.core.request.settings import Settings, settings_from

from .test_cli import assert_one_line_error, images, invoke, run_args  # noqa: F401  (fixture)


@pytest.fixture
def captured(replace_transfer):
    """Replace the transfer by a recorder that returns the content unchanged."""
    calls = []

    def record(content, styles, settings, callback=None, **masks):
        calls.append({"content": content, "styles": styles, "settings": settings, **masks})
        return content

    replace_transfer(record)
    return calls


def write(path, array):
    Image.fromarray(array).save(path)
    return str(path)


def test_several_styles_with_weights_scale_and_colour_options(images, captured, tmp_path):
    second = write(tmp_path / "second.png", np.full((20, 10, 3), 200, np.uint8))
    result = invoke(*run_args(images, "-q", "-s", second, "--style-weights", "3,1", "--style-scale", "0.5",
                              "--preserve-colors", "--match-colors", "-l", "64"))
    assert result.exit_code == 0, result.output
    (call,) = captured
    settings = call["settings"]
    assert settings.style_weights == [3.0, 1.0] and settings.style_scale == 0.5
    assert settings.preserve_colors and settings.match_colors
    assert [s.shape[:2] for s in call["styles"]] == [(24, 32), (32, 16)]  # long side 64 * 0.5
    assert Image.open(images["out"]).text["stylize:style"] == f"{images['style']}, {second}"


def test_masks_reach_the_transfer_at_their_images_sizes(images, captured, tmp_path):
    mask = np.zeros((30, 40, 3), np.uint8)
    mask[:, 20:] = 255
    content_mask = write(tmp_path / "content-mask.png", mask)
    style_mask = write(tmp_path / "style-mask.jpg", mask)
    result = invoke(*run_args(images, "-q", "--content-mask", content_mask, "--style-mask", style_mask,
                              "-l", "32"))
    assert result.exit_code == 0, result.output
    (call,) = captured
    assert call["content_mask"].shape == (24, 32, 3) and call["style_masks"][0].shape == (24, 32, 3)


@pytest.mark.parametrize("extra, fragment", [
    (["--style-weights", "3,x"], "--style-weights '3,x': expected numbers"),
    (["--style-weights", "1,2"], "2 style weights for 1 style images"),
    (["--style-weights", "-1"], "style weights must be non-negative"),
    (["--style-scale", "0"], "style_scale must be a positive number"),
])
def test_bad_style_options_are_one_line_errors(images, captured, extra, fragment):
    assert_one_line_error(invoke(*run_args(images, "-q", *extra)), 2, fragment)
    assert not captured


def test_style_masks_must_match_the_style_images(images, captured, tmp_path):
    mask = write(tmp_path / "mask.png", np.zeros((30, 40, 3), np.uint8))
    result = invoke(*run_args(images, "-q", "--content-mask", mask))
    assert_one_line_error(result, 2, "need both --content-mask and --style-mask")
    result = invoke(*run_args(images, "-q", "--content-mask", mask, "--style-mask", mask, "--style-mask", mask))
    assert_one_line_error(result, 2, "2 style masks for 1 style images")
    wide = write(tmp_path / "wide.png", np.zeros((10, 40, 3), np.uint8))
    result = invoke(*run_args(images, "-q", "--content-mask", wide, "--style-mask", mask))
    assert_one_line_error(result, 2, "a mask must cover its image exactly")
    assert not captured


@pytest.mark.parametrize("extra, losses, ratio, init", [
    ([], ("gram", "affine"), 1e5, "distribution"),
    (["-r", "5"], ("gram", "affine"), 5.0, "distribution"),
    (["--loss", "gram", "--init", "noise"], ("gram",), 1e5, "noise"),
])
def test_photo_preset_fills_in_what_the_command_line_leaves(images, captured, extra, losses, ratio, init):
    result = invoke(*run_args(images, "-q", "--preset", "photo", *extra))
    assert result.exit_code == 0, result.output
    settings = captured[0]["settings"]
    assert tuple(settings.losses) == losses and settings.ratio == ratio and settings.init == init


@pytest.mark.parametrize("extra, iterations, losses", [
    (["--quality", "draft"], QUALITIES["draft"]["iterations"], ("gram",)),
    (["--quality", "best"], QUALITIES["best"]["iterations"], ("gram",)),
    (["--quality", "normal"], Settings.iterations, ("gram",)),
    (["--quality", "draft", "-n", "7"], 7, ("gram",)),  # what the user gives wins
    (["--quality", "draft", "--preset", "photo"], QUALITIES["draft"]["iterations"], ("gram", "affine")),
])
def test_quality_fills_in_the_iterations_the_command_line_leaves(images, captured, extra, iterations, losses):
    result = invoke(*run_args(images, "-q", *extra))
    assert result.exit_code == 0, result.output
    settings = captured[0]["settings"]
    assert settings.iterations == iterations and tuple(settings.losses) == losses


def test_an_unknown_quality_is_a_one_line_error(images, captured):
    assert_one_line_error(invoke(*run_args(images, "-q", "--quality", "superb")), 2, "superb")
    with pytest.raises(UsageError, match="qualities: draft, normal, best"):
        settings_from(quality="superb")
    assert settings_from(quality="draft", ratio=5.0).iterations == QUALITIES["draft"]["iterations"]
    with pytest.raises(UsageError, match="not both"):
        settings_from(Settings(), quality="draft")
