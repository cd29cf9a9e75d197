"""Several style images, style scale, colour preservation, masks and presets through the pipeline."""
import numpy as np
import pytest

from stylize.core.evaluation import objective
from stylize.core.run.colors import luminance
from stylize.core.io.images import fit_long_side, resize
from stylize.core.run.pipeline import transfer
from stylize.core.request.settings import Settings


@pytest.fixture
def tiny_settings(tiny_net):
    prototxt, weights = tiny_net

    def make(**given) -> Settings:
        return Settings(**{"backend": "caffe", "content_layers": ["conv2"], "style_layers": ["conv1", "conv2"],
                           "options": {"caffe": {"prototxt": prototxt, "weights": weights}},
                           "length": 24, "iterations": 6, "scales": 1, "threads": 1, **given})
    return make


@pytest.fixture
def small(photos):
    def image(name, length=24):
        photo = photos[name]
        return resize(photo, fit_long_side(photo.shape[:2], length))
    return image


def test_blend_weights_pick_and_mix_the_style_images(tiny_settings, small):
    content, a, b = small("coffee"), small("astronaut"), small("chelsea")
    only_a = transfer(content, a, tiny_settings())
    assert np.array_equal(transfer(content, [a, b], tiny_settings(style_weights=[1, 0])), only_a)
    assert np.array_equal(transfer(content, [b, a], tiny_settings(style_weights=[0, 5])), only_a)
    mixed = transfer(content, [a, b], tiny_settings(style_weights=[1, 1]))
    assert not np.array_equal(mixed, only_a)


def test_style_scale_sets_the_size_the_network_sees_the_style_at(tiny_settings, small, monkeypatch):
    seen = []
    real = objective._features

    def record(backend, image, terms):
        seen.append((terms[0].loss.role, image.shape[:2]))
        return real(backend, image, terms)

    monkeypatch.setattr(objective, "_features", record)
    content = small("coffee", 32)  # 21x32
    transfer(content, small("astronaut", 64), tiny_settings(length=32, style_scale=0.5, scales=2, iterations=2))
    assert [shape for role, shape in seen if role == "style"] == [(8, 8), (16, 16)]
    assert [shape for role, shape in seen if role == "content"] == [(10, 16), (21, 32)]


def test_preserve_colors_keeps_the_contents_colour_channels(tiny_settings, small):
    content, style = small("coffee"), small("astronaut")
    result = transfer(content, style, tiny_settings(preserve_colors=True, init="noise", seed=1))
    inside = (result > 0.02).all(axis=-1) & (result < 0.98).all(axis=-1)
    assert inside.mean() > 0.5
    chroma = result - luminance(result)[..., None]
    content_chroma = content - luminance(content)[..., None]
    assert np.abs(chroma - content_chroma)[inside].max() < 2e-3
    assert np.abs(luminance(result) - luminance(content)).mean() > 0.01  # but the luminance was styled


def test_masks_run_through_the_pipeline_and_refuse_a_mismatch(tiny_settings, small):
    content, style = small("coffee"), small("astronaut")
    content_mask = np.zeros_like(content)
    content_mask[:, content.shape[1] // 2:] = 1.0  # black left, white right
    style_mask = np.zeros_like(style)
    style_mask[style.shape[0] // 2:] = 1.0
    result = transfer(content, style, tiny_settings(), content_mask=content_mask, style_masks=[style_mask])
    assert result.shape == content.shape
    assert not np.array_equal(result, transfer(content, style, tiny_settings()))
    from stylize.core import UsageError
    with pytest.raises(UsageError, match="one --style-mask per -s"):
        transfer(content, [style, style], tiny_settings(), content_mask=content_mask, style_masks=[style_mask])


def test_photo_preset_fills_in_only_what_is_not_given():
    photo = Settings.from_preset("photo")
    assert "affine" in photo.losses and photo.init == "distribution"
    assert Settings.from_preset("photo", ratio=5.0).ratio == 5.0
    from stylize.core import UsageError
    with pytest.raises(UsageError, match="unknown preset 'painting'; presets: photo"):
        Settings.from_preset("painting")


def test_images_smaller_than_the_network_takes_are_refused_before_running(tiny_settings, small, monkeypatch):
    from stylize.backends.caffe_net import CaffeBackend
    from stylize.core import ImageError
    monkeypatch.setattr(CaffeBackend, "smallest_input", lambda self: (20, 20))
    steps = []
    with pytest.raises(ImageError, match=r"content image would be 24x16 px at this --length, .* at least 20x20"):
        transfer(small("coffee"), small("astronaut"), tiny_settings(), callback=steps.append)
    with pytest.raises(ImageError, match="content image would be 24x16 px at the coarsest scale"):
        transfer(small("coffee", 48), small("astronaut"), tiny_settings(length=48, scales=2))
    with pytest.raises(ImageError, match="style image would be 14x14 px at this --length"):
        transfer(small("coffee", 48), small("astronaut", 14), tiny_settings(length=48, style_scale=0.3))
    assert not steps
