"""Starting images as plugins (``stylize.starts``): the built-ins' contract, --init names and paths, the first picture."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

from stylize import Job, events
from stylize.core.request import initial
from stylize.core import plugins
from stylize.core.errors import UsageError
from stylize.core.io.images import resize, save_image
from stylize.core.request.settings import Settings
from stylize.starts.file import File
from stylize.starts.noise import Noise
from stylize.starts.simple import Content, Style
from stylize.testing import StartContract


# The built-ins' contract tests, one class each (noise is drawn from the seed: another seed, other noise).
TestContent, TestStyle, TestNoise = (type(f"Test{start.__name__}", (StartContract,),
                                          {"start_class": start, "random": start is Noise})
                                     for start in (Content, Style, Noise))


def _written_picture() -> str:
    path = Path(tempfile.mkdtemp()) / "start.png"
    y, x = np.mgrid[0:30, 0:50] / 50
    save_image(np.stack([x, y, x * y], axis=-1).astype(np.float32), path)
    return str(path)


class TestFile(StartContract):
    """--init PATH."""
    start_class = File
    options = {"path": _written_picture()}


def test_the_builtins_are_registered_and_named_by_init():
    assert {"content", "style", "noise", "file"} <= set(plugins.names(plugins.STARTS))
    assert "file" not in initial.named() and {"content", "style", "noise"} <= set(initial.named())
    assert plugins.chosen_start("noise") == ("noise", {})
    assert plugins.chosen_start("some/picture.png") == ("file", {"path": "some/picture.png"})


def test_content_and_style_starts_are_the_images_resized():
    images = StartContract().sample_images(np.random.default_rng(0))
    np.testing.assert_array_equal(Content().image(images, (24, 32), None), resize(images.content, (24, 32)))
    np.testing.assert_array_equal(Style().image(images, (24, 32), None), resize(images.styles[0], (24, 32)))


def test_noise_exponent_shapes_the_spectrum():
    images = StartContract().sample_images(np.random.default_rng(0))

    def high_frequency_share(exponent):
        image = Noise(exponent=exponent).image(images, (64, 64), 1)[..., 0]
        power = np.abs(np.fft.fft2(image - image.mean())) ** 2
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64)))
        return power[f > 0.25].sum() / power.sum()
    assert high_frequency_share(2.0) < high_frequency_share(1.0) < high_frequency_share(0.0)


@pytest.mark.parametrize("init, options, message", [
    ("nowhere.png", {}, "not content, fast, noise, style or an existing image file"),
    ("file", {}, "start 'file' needs an image"),
    ("file", {"file": {"path": "nowhere.png"}}, "'nowhere.png': not a start's name or an existing image file"),
    ("noise", {"noise": {"exponnt": 2}}, "did you mean 'exponent'"),
    ("noise", {"noise": {"exponent": "steep"}}, "noise.exponent='steep': expected a number"),
    ("content", {"noise": {"exponent": 2}}, "options given for noise, which this run does not use"),
])
def test_bad_starts_are_refused_by_validate(init, options, message):
    if init == "nowhere.png":  # the starts installed, a third party's among them, are listed
        message = message.replace("content, fast, noise, style", ", ".join(initial.named()))
    with pytest.raises(UsageError, match=re.escape(message)):
        Settings(init=init, options=options).validate()


def test_a_misspelt_start_suggests_the_name():
    with pytest.raises(UsageError, match=r"--init 'fsat': not .* or an existing image file; did you mean 'fast'\?"):
        Settings(init="fsat").validate()


def test_a_start_s_options_are_checked_and_converted():
    settings = Settings(init="noise", options={"noise": {"exponent": "2"}})
    settings.validate()
    assert settings.options == {"noise": {"exponent": 2.0}}
    assert isinstance(plugins.make_start(settings), Noise) and plugins.make_start(settings).exponent == 2.0


def test_a_start_that_makes_the_wrong_shape_is_a_plugin_error(monkeypatch):
    from stylize.core.errors import PluginError
    monkeypatch.setattr(Content, "image", lambda self, images, shape, seed: np.zeros((3, 3, 3), np.float32))
    images = StartContract().sample_images(np.random.default_rng(0))
    with pytest.raises(PluginError, match=r"start 'content' made a float32 image of shape \(3, 3, 3\)"):
        initial.start_image(Settings(), images.content, images.styles, (8, 8))


def test_the_job_emits_the_start_first_and_optimizes_from_it(tiny, pictures):
    """The FirstImage event comes before Started (before the network loads) and is what the run starts from."""
    seen = []
    job = Job(*pictures, length=48, iterations=3, scales=2, init="noise", seed=4, **tiny)
    job.run(seen.append)
    first = seen[0]
    assert isinstance(first, events.FirstImage) and isinstance(seen[1], events.Started)
    assert first.level.index == 0 and first.image.shape == (*job.plan.levels[0].shape, 3)
    images = StartContract().sample_images(np.random.default_rng(0))
    np.testing.assert_array_equal(first.image, Noise().image(images, first.level.shape, 4))
    steps = [e for e in seen if isinstance(e, events.Step)]
    # The first iteration moved away from the start, not from the content it would otherwise start from.
    moved = np.abs(steps[0].result.image - first.image).mean()
    from_content = np.abs(steps[0].result.image - resize(job.inputs.content, first.level.shape)).mean()
    assert moved < from_content


def test_a_file_start_runs_through_transfer(tiny, pictures, tmp_path):
    from stylize.core.run.pipeline import transfer
    path = tmp_path / "start.png"
    save_image(np.full((20, 20, 3), 0.25, np.float32), path)
    seen = []
    content, style = (resize(p, (32, 48)) for p in pictures)
    transfer(content, style, Settings(init=str(path), iterations=1, scales=1, **tiny), seen.append)
    assert abs(float(seen[0].image.mean()) - 0.25) < 0.1  # one small step from the flat gray file
