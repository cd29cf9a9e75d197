"""Exact tiled evaluation on the tiny network: the grid, the halo, tiled == whole, the gradient, the CLI."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.prototxt import parse
from stylize.backends.sizes import tiling as prototxt_tiling
from stylize.backends.vgg_architecture import VGG19_BLOCKS, vgg_prototxt
from stylize.cli.main import cli
from stylize.core import Loss, UsageError
from stylize.core.evaluation.objective import WeightedLoss, make_objective
from stylize.core.evaluation.tiled_objective import TiledObjective, make_tiled_objective
from stylize.core.evaluation.tiling import halo_for, make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.losses.tv import TotalVariationLoss
from stylize.testing import gradient_errors

from .tinynet import PROTOTXT

LAYERS = ["conv1", "conv2"]


@pytest.fixture(scope="module")
def backend(tiny_net):
    prototxt, weights = tiny_net
    return CaffeBackend(LAYERS, prototxt=prototxt, weights=weights)


def images(seed=0):
    rng = np.random.default_rng(seed)
    content = rng.uniform(0.1, 0.9, (45, 61, 3)).astype(np.float32)
    styles = [rng.random((37, 50, 3)).astype(np.float32), rng.random((40, 40, 3)).astype(np.float32)]
    start = rng.uniform(0.1, 0.9, (45, 61, 3)).astype(np.float32)
    return content, styles, start


def masks():
    """Two regions of the output and of each style image (a left/right and a top/bottom split)."""
    out = np.zeros((2, 45, 61), np.float32)
    out[0, :, :30] = 1
    first, second = np.zeros((2, 37, 50), np.float32), np.zeros((2, 40, 40), np.float32)
    first[0, :20] = 1
    second[0, :, :10] = 1
    for m in (out, first, second):
        m[1] = 1 - m[0]
    return out, [first, second]


# -- what the prototxt says ----------------------------------------------------------------

def test_stride_and_radius_come_from_the_prototxt():
    tiny = prototxt_tiling(parse(PROTOTXT), LAYERS)
    # conv1 (3x3, pad 1) reads 1 px around; pool 2/2 then conv2 (3x3, pad 1) reach 3 px back, 4 forward.
    assert tiny.stride == 2 and tiny.strides == {"conv1": 1, "conv2": 2} and tiny.radius == 3
    vgg = prototxt_tiling(parse(vgg_prototxt(VGG19_BLOCKS)), ["conv1_1", "conv4_2", "conv5_1"])
    assert vgg.stride == 16 and vgg.radius == 70 and halo_for(vgg) == 80
    assert vgg.grid((100, 77)) == {"conv1_1": (100, 77), "conv4_2": (13, 10), "conv5_1": (7, 5)}


def test_a_network_that_mixes_all_positions_cannot_be_tiled():
    text = PROTOTXT + """layer { name: "fc" type: "InnerProduct" bottom: "conv2" top: "fc"
        inner_product_param { num_output: 2 } }"""
    assert prototxt_tiling(parse(text), ["conv1", "fc"]) is None


# -- the grid ------------------------------------------------------------------------------

def test_cores_partition_every_layers_grid_and_spans_stay_inside(backend):
    tiling = backend.tiling(LAYERS)
    grid = make_tiles(tiling, 12).grid((45, 61))
    assert grid.counts == (4, 6)
    whole = tiling.grid((45, 61))
    owned = {layer: np.zeros(shape, int) for layer, shape in whole.items()}
    for tile in grid.tiles():
        (r0, r1), (c0, c1) = [(s.start, s.stop) for s in tile.span]
        assert 0 <= r0 and r1 <= 45 and 0 <= c0 and c1 <= 61
        assert r0 % tiling.stride == 0 and c0 % tiling.stride == 0, "tiles start on the stride"
        # the halo is the full halo except where the image ends
        assert tile.core[0].start - r0 in (0, grid.halo) and r1 - tile.core[0].stop in (0, grid.halo)
        assert (r0 == 0) == (tile.core[0].start == 0) and (c1 == 61) == (tile.core[1].stop == 61)
        for layer, place in grid.windows(tile, whole).items():
            owned[layer][place.window.rows, place.window.cols] += 1
    assert all((count == 1).all() for count in owned.values()), "every position belongs to exactly one core"


def test_a_halo_below_the_receptive_field_is_refused(backend):
    tiling = backend.tiling(LAYERS)
    with pytest.raises(UsageError, match="smaller than the network's receptive-field radius"):
        make_tiles(tiling, 12, halo=2)
    with pytest.raises(UsageError, match="not a multiple of the network's stride"):
        make_tiles(tiling, 12, halo=5)
    with pytest.raises(UsageError, match="at least the network's stride"):
        make_tiles(tiling, 1)
    assert make_tiles(tiling, 13, halo=6).core == (12, 12)


def test_an_inexact_halo_would_change_the_result(backend):
    """Why the refusal matters: a halo one stride short of the radius is measurably wrong."""
    content, styles, start = images()
    x = backend.preprocess(start)
    losses = [WeightedLoss("content", ContentLoss(["conv2"]), 1.0)]
    whole = make_objective(backend, losses, content, styles)(x)[0]
    tiles = make_tiles(backend.tiling(LAYERS), 12)
    short = type(tiles)(tiles.core, 2, tiles.tiling)  # bypasses make_tiles' check
    assert make_tiled_objective(backend, losses, content, styles, tiles)(x)[0] == pytest.approx(whole, rel=1e-6)
    assert make_tiled_objective(backend, losses, content, styles, short)(x)[0] != pytest.approx(whole, rel=1e-4)


# -- tiled == whole --------------------------------------------------------------------------

CASES = {
    "content": lambda: [WeightedLoss("content", ContentLoss(["conv1", "conv2"]), 1.0)],
    "gram": lambda: [WeightedLoss("gram", GramLoss(LAYERS), 1e4)],
    "content+gram+tv": lambda: [WeightedLoss("content", ContentLoss(["conv2"]), 1.0),
                                WeightedLoss("gram", GramLoss(LAYERS), 1e4),
                                WeightedLoss("tv", TotalVariationLoss(()), 10.0)],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("blend", [False, True], ids=["one-style", "blend"])
@pytest.mark.parametrize("with_masks", [False, True], ids=["no-masks", "masks"])
def test_tiled_objective_equals_the_whole_image(backend, case, blend, with_masks):
    content, styles, start = images()
    styles = styles if blend else styles[:1]
    regions, style_regions = masks() if with_masks else (None, None)
    style_regions = None if style_regions is None else style_regions[:len(styles)]
    x = backend.preprocess(start)
    kw = dict(style_weights=[3, 1] if blend else None, regions=regions, style_regions=style_regions)
    whole = make_objective(backend, CASES[case](), content, styles, **kw)
    value, grad = whole(x)
    grad = grad.copy()
    tiles = make_tiles(backend.tiling(LAYERS), 12)
    tiled = make_tiled_objective(backend, CASES[case](), content, styles, tiles, **kw)
    assert isinstance(tiled, TiledObjective) and tiled.grid.counts == (4, 6)
    tiled_value, tiled_grad = tiled(x)
    assert tiled_value == pytest.approx(value, rel=1e-5)
    assert tiled.terms.keys() == whole.terms.keys()
    for name in whole.terms:
        assert tiled.terms[name] == pytest.approx(whole.terms[name], rel=1e-4, abs=1e-12)
    assert np.abs(tiled_grad - grad).max() <= 1e-4 * np.abs(grad).max()
    assert tiled.evaluations == 1 and tiled(x)[0] == pytest.approx(tiled_value, rel=1e-6), "repeatable"


def test_tiled_gradient_against_finite_differences(backend):
    content, styles, start = images(3)
    regions, style_regions = masks()
    losses = [WeightedLoss("content", ContentLoss(["conv2"]), 1.0), WeightedLoss("gram", GramLoss(LAYERS), 1e5)]
    tiled = make_tiled_objective(backend, losses, content, styles, make_tiles(backend.tiling(LAYERS), 12),
                                 style_weights=[1, 2], regions=regions, style_regions=style_regions)
    x = backend.preprocess(start).astype(np.float64).astype(np.float32)
    value, grad = tiled(x)
    grad = grad.copy()
    assert tiled.terms["gram"] > 0 and tiled.terms["content"] > 0
    errors = gradient_errors(lambda v: tiled(v.astype(np.float32))[0], x, grad, eps=1e-1, count=40)
    assert np.median(errors) < 3e-3 and errors.max() < 3e-2, errors


class Untileable(Loss):
    """A style statistic without the tile interface."""

    role = "style"

    def set_target(self, features):
        self.target = {layer: features[layer].mean() for layer in self.layers}

    def __call__(self, features):
        return 0.0, {layer: np.zeros_like(features[layer]) for layer in self.layers}


def test_a_loss_without_the_tile_interface_is_refused_by_name(backend):
    content, styles, _ = images()
    losses = [WeightedLoss("content", ContentLoss(["conv2"]), 1.0), WeightedLoss("mystat", Untileable(LAYERS), 1.0)]
    with pytest.raises(UsageError, match="loss 'mystat' cannot be evaluated in tiles"):
        make_tiled_objective(backend, losses, content, styles[:1], make_tiles(backend.tiling(LAYERS), 12))


# -- the command line ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiling-cli")
    content, styles, _ = images(5)
    paths = {}
    for name, array in (("content", content), ("style", styles[0])):
        paths[name] = folder / f"{name}.png"
        Image.fromarray((array * 255).astype(np.uint8)).save(paths[name])
    return folder, paths


def run_cli(tiny_net, files, *extra, env=None):
    folder, paths = files
    prototxt, weights = tiny_net
    return CliRunner().invoke(cli, [
        "run", "-c", str(paths["content"]), "-s", str(paths["style"]), "--backend", "caffe",
        "--prototxt", prototxt, "--weights", weights, "--content-layers", "conv2", "--style-layers", "conv1,conv2",
        "--length", "61", "--scales", "1", "-n", "6", "--checkpoint-every", "0", "-f", *extra], env=env,
        prog_name="stylize")


def test_cli_tiled_run_gives_the_untiled_image(tiny_net, files, tmp_path):
    whole, tiled = tmp_path / "whole.png", tmp_path / "tiled.png"
    first = run_cli(tiny_net, files, "-o", str(whole), "--tile-size", "off")
    assert first.exit_code == 0, first.output
    second = run_cli(tiny_net, files, "-o", str(tiled), "--tile-size", "16")
    assert second.exit_code == 0, second.output
    assert "tiled 4x3, 16x16 px tiles (4 px halo)" in second.output
    a, b = (np.asarray(Image.open(p), np.int16) for p in (whole, tiled))
    assert np.abs(a - b).max() <= 1, "same image up to the last bit of rounding"


def test_cli_refusal_names_the_largest_length_that_fits_tiled(tiny_net, files, tmp_path):
    from stylize.core.planning import memory
    result = run_cli(tiny_net, files, "-o", str(tmp_path / "x.png"), env={memory.LIMIT_VARIABLE: "1KiB"})
    assert result.exit_code == 7
    assert "stylize: error: not enough memory" in result.output and "tiled" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["0", "-3", "big", "1.5"])
def test_cli_bad_tile_size_is_a_one_line_error(tiny_net, files, tmp_path, value):
    result = run_cli(tiny_net, files, "-o", str(tmp_path / "x.png"), "--tile-size", value)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("stylize: error: --tile-size")
