"""Semantic masks, the masked and blended Gram loss, and colour handling (pure numpy)."""
import io

import numpy as np
import pytest
from PIL import Image

from stylize.core import StyleTarget, UsageError
from stylize.core.run.colors import luminance, match_colors, match_luminance, restore_colors
from stylize.core.io.images import resize
from stylize.core.io.inputs import Inputs
from stylize.core.io.masks import palette, regions, resize_nearest, resize_regions, split_regions
from stylize.losses.gram import GramLoss, gram

from stylize.testing import gradient_errors as coordinate_check

RED, BLUE, GREEN = (220, 30, 30), (20, 40, 200), (30, 180, 60)


def painted(layout, shape=(40, 60), jpeg_quality=None):
    """An HxWx3 mask image in [0, 1] with ``layout`` = [(colour, (rows, cols) slices)]."""
    image = np.zeros((*shape, 3), np.uint8)
    for colour, where in layout:
        image[where] = colour
    if jpeg_quality:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=jpeg_quality)
        image = np.asarray(Image.open(buffer).convert("RGB"))
    return image.astype(np.float32) / 255.0


def halves(left, right, shape=(40, 60), **kwargs):
    w = shape[1] // 2
    return painted([(left, np.s_[:, :w]), (right, np.s_[:, w:])], shape, **kwargs)


def test_palette_finds_the_painted_colours_through_jpeg_noise():
    mask = halves(RED, BLUE, jpeg_quality=60)
    assert len(np.unique(mask.reshape(-1, 3), axis=0)) > 2  # JPEG really added colours
    colours = palette([mask])
    assert len(colours) == 2
    assert sorted(map(tuple, np.rint(colours / 8).astype(int))) == sorted(
        tuple(np.rint(np.array(c) / 8).astype(int)) for c in (RED, BLUE))
    one_hot = regions(mask, colours)
    assert one_hot.shape == (2, 40, 60) and np.array_equal(one_hot.sum(axis=0), np.ones((40, 60)))
    red = int(np.argmin(np.linalg.norm(colours - RED, axis=1)))
    assert one_hot[red][:, :30].mean() > 0.97 and one_hot[red][:, 30:].mean() < 0.03


def test_regions_are_the_content_masks_colours_in_one_shared_palette():
    content = halves(RED, BLUE)
    style = painted([(GREEN, np.s_[:10]), (BLUE, np.s_[10:25]), (RED, np.s_[25:])])
    content_regions, (style_regions,) = split_regions(content, [style])
    assert len(content_regions) == 2 and style_regions.shape == (2, 40, 60)  # green is dropped
    for c, s in zip(content_regions, style_regions):
        assert 0 < c.sum() < c.size and 0 < s.sum() < s.size
    # The region that is the content's left half is the style's bottom rows (both red).
    left = int(np.argmax([c[:, :30].mean() for c in content_regions]))
    assert style_regions[left][25:].mean() == 1 and style_regions[left][:25].mean() == 0


def test_masks_resize_without_new_colours_and_regions_resize_softly():
    mask = halves(RED, BLUE, shape=(9, 14))
    small = resize_nearest(mask, (4, 5))
    assert small.shape == (4, 5, 3)
    assert {tuple(c) for c in np.rint(small.reshape(-1, 3) * 255).astype(int)} <= {RED, BLUE}
    soft = resize_regions(regions(mask, np.array([RED, BLUE], np.float32)), (3, 4))
    assert soft.shape == (2, 3, 4) and np.allclose(soft.sum(axis=0), 1, atol=1e-5)


def test_a_mask_must_have_its_images_shape_and_one_per_style():
    with pytest.raises(UsageError, match="one --style-mask per -s"):
        Inputs(np.zeros((4, 4, 3)), [np.zeros((4, 4, 3))] * 2, np.zeros((4, 4, 3)),
               [np.zeros((4, 4, 3))]).check()
    with pytest.raises(UsageError, match="one weight per -s"):
        Inputs(np.zeros((4, 4, 3)), [np.zeros((4, 4, 3))]).check([1, 2])
    with pytest.raises(UsageError, match="both --content-mask and --style-mask"):
        Inputs(np.zeros((4, 4, 3)), [np.zeros((4, 4, 3))], np.zeros((4, 4, 3))).check()


def features(rng, shape=(4, 6, 5)):
    return {"a": rng.standard_normal(shape).astype(np.float64)}


def soft_regions(rng, shape, count=2):
    raw = rng.random((count, *shape)) ** 3
    return (raw / raw.sum(axis=0)).astype(np.float32)


def test_masked_and_blended_gram_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    loss = GramLoss(["a"])
    styles = [StyleTarget(features(rng, (4, 8, 7)), w, soft_regions(rng, (16, 14))) for w in (0.7, 0.3)]
    loss.set_style_targets(styles, soft_regions(rng, (12, 10)))
    x = features(rng)
    value, grads = loss(x)
    assert value > 0
    errors = coordinate_check(lambda v: loss({"a": v})[0], x["a"], grads["a"], eps=1e-6, count=30)
    assert errors.max() < 1e-6, errors


def test_blended_target_is_the_weighted_mean_of_grams():
    rng = np.random.default_rng(1)
    a, b = features(rng), features(rng)
    loss = GramLoss(["a"])
    loss.set_style_targets([StyleTarget(a, 0.75), StyleTarget(b, 0.25)], None)
    assert np.allclose(loss.targets["a"][0], 0.75 * gram(a["a"]) + 0.25 * gram(b["a"]))


def test_one_region_everywhere_is_the_plain_gram_loss():
    rng = np.random.default_rng(2)
    style, x = features(rng), features(rng)
    plain, masked = GramLoss(["a"]), GramLoss(["a"])
    plain.set_target(style)
    masked.set_style_targets([StyleTarget(style, 1.0, np.ones((1, 6, 5), np.float32))],
                             np.ones((1, 6, 5), np.float32))
    assert masked(x)[0] == pytest.approx(plain(x)[0], rel=1e-6)
    assert np.allclose(masked(x)[1]["a"], plain(x)[1]["a"], rtol=1e-5, atol=1e-9)


def test_each_region_matches_its_own_style_region():
    """Region statistics swapped between halves cost; matching halves cost nothing."""
    rng = np.random.default_rng(3)
    left, right = rng.standard_normal((3, 4, 3)), 3 + rng.standard_normal((3, 4, 3))
    both = {"a": np.concatenate([left, right], axis=2)}
    mask = np.zeros((2, 4, 6), np.float32)
    mask[0, :, :3] = mask[1, :, 3:] = 1
    loss = GramLoss(["a"])
    loss.set_style_targets([StyleTarget(both, 1.0, mask)], mask)
    swapped = {"a": np.concatenate([right, left], axis=2)}
    assert loss(both)[0] == pytest.approx(0, abs=1e-9)
    assert loss(swapped)[0] > 1


def test_default_loss_refuses_masks_and_blends():
    from stylize.losses.content import ContentLoss
    loss = ContentLoss(["a"])
    with pytest.raises(UsageError, match="several style images"):
        loss.set_style_targets([StyleTarget({}), StyleTarget({})], None)


def test_match_colors_gives_the_style_the_contents_colour_statistics(photos):
    content, style = photos["coffee"][::4, ::4], photos["astronaut"][::4, ::4]
    matched = match_colors(style, content)
    c, m = content.reshape(-1, 3), matched.reshape(-1, 3)
    assert np.allclose(m.mean(axis=0), c.mean(axis=0), atol=0.02)
    assert np.allclose(np.cov(m.T), np.cov(c.T), atol=0.005)
    # Shading is kept: the luminance layout is the style's, not the content's.
    assert np.corrcoef(luminance(matched).ravel(), luminance(style).ravel())[0, 1] > 0.9


def test_luminance_transfer_keeps_the_contents_colours(photos):
    content, style = photos["coffee"][::4, ::4], photos["astronaut"][::4, ::4]
    gray_style = match_luminance(style, content)
    assert np.allclose(gray_style[..., 0], gray_style[..., 2])  # gray
    assert luminance(gray_style).mean() == pytest.approx(luminance(content).mean(), abs=0.02)
    output = np.repeat(luminance(resize(style, content.shape[:2]))[..., None], 3, axis=-1)
    restored = restore_colors(output, content)
    inside = (restored > 0.02).all(axis=-1) & (restored < 0.98).all(axis=-1)  # not clipped
    assert np.allclose(luminance(restored)[inside], luminance(output)[inside], atol=1e-4)
    chroma = restored - luminance(restored)[..., None]
    content_chroma = content - luminance(content)[..., None]
    assert np.abs(chroma - content_chroma)[inside].max() < 1e-3


def test_a_blended_out_style_does_not_define_a_region():
    """Weight 0 with a region only that style has: the region gets no target (not 0/0)."""
    rng = np.random.default_rng(4)
    first, second = np.zeros((2, 6, 5), np.float32), np.zeros((2, 6, 5), np.float32)
    first[0], second[1] = 1.0, 1.0
    loss = GramLoss(["a"])
    loss.set_style_targets([StyleTarget(features(rng), 1.0, first), StyleTarget(features(rng), 0.0, second)],
                           soft_regions(rng, (6, 5)))
    assert loss.targets["a"][1] is None
    value, grads = loss(features(rng))
    assert np.isfinite(value) and np.isfinite(grads["a"]).all()
