"""Exact tiled evaluation on the real VGG19: tiled value and gradient equal the whole image's, and the
run plan tiles what does not fit."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stylize.backends.caffe_vgg import VGG19
from stylize.core.planning import memory
from stylize.core.run.job import Job
from stylize.core.evaluation.objective import WeightedLoss, make_objective
from stylize.core.evaluation.tiled_objective import make_tiled_objective
from stylize.core.evaluation.tiling import make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss

CONTENT_LAYERS = list(VGG19.default_content_layers)
STYLE_LAYERS = list(VGG19.default_style_layers)
#: Cores of at most 96 px make 2 rows and 3 columns of tiles, and with VGG19's 80 px halo every
#: tile's input is cut by the tiling on both axes somewhere (not only where the image ends).
SHAPE, CORE = (192, 288), 96


@pytest.fixture(scope="module")
def vgg19(vgg19_weights):
    return VGG19(CONTENT_LAYERS + STYLE_LAYERS, weights=vgg19_weights)


@pytest.fixture(scope="module")
def scene(photos, painting):
    from stylize.core.io.images import resize
    content = resize(photos["astronaut"][:320, 20:500], SHAPE)
    styles = [resize(painting, (100, 80)), resize(photos["coffee"], (90, 120))]
    start = np.clip(content + np.random.default_rng(0).normal(0, 0.1, content.shape), 0, 1).astype(np.float32)
    regions = np.zeros((2, *SHAPE), np.float32)
    regions[0, :, :100] = 1  # the left of the output takes region 0 ...
    regions[1] = 1 - regions[0]
    style_regions = []
    for style in styles:
        r = np.zeros((2, *style.shape[:2]), np.float32)
        r[0, : style.shape[0] // 2] = 1  # ... from the top of each style image
        r[1] = 1 - r[0]
        style_regions.append(r)
    return content, styles, start, regions, style_regions


def losses():
    """Content and Gram terms weighted so that each makes a good share of the gradient."""
    return [WeightedLoss("content", ContentLoss(CONTENT_LAYERS), 1.0),
            WeightedLoss("gram", GramLoss(STYLE_LAYERS), 200.0)]


@pytest.mark.slow
@pytest.mark.parametrize("blend_and_masks", [False, True], ids=["one-style", "blend-with-masks"])
def test_tiled_equals_whole_on_vgg19(vgg19, scene, blend_and_masks):
    content, styles, start, regions, style_regions = scene
    count = 2 if blend_and_masks else 1
    kw = dict(style_weights=[2, 1][:count], regions=regions if blend_and_masks else None,
              style_regions=style_regions[:count] if blend_and_masks else None)
    x = vgg19.preprocess(start)
    # The whole image, term by term (their sum is the objective's gradient).
    grads, values = {}, {}
    for term in losses():
        values[term.name], g = make_objective(vgg19, [term], content, styles[:count], **kw)(x)
        grads[term.name] = g.copy()
    grad = grads["content"] + grads["gram"]
    for g in grads.values():  # neither term is negligible: an error in either would show
        assert np.linalg.norm(g) > 0.1 * np.linalg.norm(grad)
    tiles = make_tiles(vgg19.tiling(CONTENT_LAYERS + STYLE_LAYERS), CORE)
    tiled = make_tiled_objective(vgg19, losses(), content, styles[:count], tiles, **kw)
    assert tiled.grid.counts == (2, 3)
    assert all(0 < tile.span[1].start or tile.span[1].stop < SHAPE[1] for tile in tiled.grid.tiles())
    assert all(0 < tile.span[0].start or tile.span[0].stop < SHAPE[0] for tile in tiled.grid.tiles())
    tiled_value, tiled_grad = tiled(x)
    assert tiled_value == pytest.approx(sum(values.values()), rel=1e-4)
    for name, weight in (("content", 1.0 * 512 * 512 / (SHAPE[0] * SHAPE[1])), ("gram", 200.0)):
        assert tiled.terms[name] * weight == pytest.approx(values[name], rel=1e-4)
    error = np.abs(tiled_grad - grad).max() / np.abs(grad).max()
    assert error <= 1e-4, error
    assert np.linalg.norm(tiled_grad - grad) <= 1e-4 * np.linalg.norm(grad)


@pytest.mark.slow
def test_auto_tiles_the_level_that_does_not_fit_whole(vgg19_weights, photos, painting, tmp_path, monkeypatch):
    """With a memory limit between the tiled and the whole estimate, the plan tiles the last level only."""
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    Image.fromarray((photos["astronaut"] * 255).astype(np.uint8)).save(content)
    Image.fromarray((painting * 255).astype(np.uint8)).save(style)
    settings = dict(length=768, scales=2, iterations=2, options={"caffe-vgg19": {"weights": vgg19_weights}})
    monkeypatch.setenv(memory.LIMIT_VARIABLE, "1000GiB")
    whole = Job(content, style, tile_size="off", **settings).estimate
    monkeypatch.setenv(memory.LIMIT_VARIABLE, str(int(whole.memory_bytes * 0.8)))
    with pytest.raises(Exception, match="not enough memory"):
        Job(content, style, tile_size="off", **settings).estimate
    estimate = Job(content, style, **settings).estimate
    assert estimate.tiles[0] is None and estimate.tiles[1].startswith("tiled ")
    assert estimate.memory_bytes <= whole.memory_bytes * 0.8
    assert estimate.level_flops[1] > whole.level_flops[1], "tiles cost more work than the whole image"
