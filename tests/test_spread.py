"""Tiles sized for a cluster's workers (``stylize.core.planning.spread``): they fit the smallest worker's memory limit
and this process's, there are at least as many as workers, and a smaller worker gets smaller tiles."""
from __future__ import annotations

import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.core.errors import ResourceError
from stylize.core.planning.plan import Level
from stylize.core.evaluation.remote import Machines
from stylize.core.planning.spread import spread
from stylize.core.planning.tile_memory import client_bytes, tiled_bytes, worker_bytes
from stylize.core.planning.tile_search import count, tiling_of
from stylize.core.evaluation.tiling import make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.core.evaluation.objective import WeightedLoss
from stylize.optimizers.lbfgs import LBFGS

LAYERS = ["conv1", "conv2"]
SHAPE = (900, 1300)


@pytest.fixture(scope="module")
def parts(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(LAYERS, prototxt=prototxt, weights=weights, precision="fp32")
    losses = [WeightedLoss("content", ContentLoss(["conv2"]), 1.0), WeightedLoss("gram", GramLoss(LAYERS), 1e4)]
    level = Level(0, max(SHAPE), SHAPE, (SHAPE,), 10, 0)
    return backend, losses, level, tiling_of(backend, losses)


def spread_on(parts, *memory, tiles=None, limit=None):
    backend, losses, level, tiling = parts
    return spread(level, tiles, [(LBFGS(), None)], backend, losses, limit, Machines("tcp://x:1", memory), tiling,
                  auto=True)


def test_at_least_a_tile_per_worker_each_within_the_smallest_worker(parts):
    backend, losses, level, _ = parts
    for workers in (1, 2, 5, 9):
        tiles, machines, each = spread_on(parts, *[2 ** 40] * workers)
        assert count(tiles, SHAPE) >= max(2, workers) and machines == min(workers, count(tiles, SHAPE))
        assert each == worker_bytes(backend, losses, tiles, SHAPE, level.style_shapes)


def test_a_smaller_worker_gets_smaller_tiles(parts):
    backend, losses, level, _ = parts
    roomy, _, roomy_each = spread_on(parts, 2 ** 40, 2 ** 40)
    smallest = roomy_each - 1  # the roomy tiles no longer fit the smaller worker
    tiles, machines, each = spread_on(parts, 2 ** 40, smallest)
    assert each <= smallest < roomy_each and count(tiles, SHAPE) > count(roomy, SHAPE)
    assert max(tiles.grid(SHAPE).largest) <= max(roomy.grid(SHAPE).largest)
    # Nothing fits a worker below the network's own process: the level stays here.
    assert spread_on(parts, 2 ** 40, 2 ** 20) is None


def test_the_client_limit_counts_too_and_a_fixed_tile_size_is_refused_by_the_workers_figure(parts):
    backend, losses, level, tiling = parts
    assert spread_on(parts, 2 ** 40, 2 ** 40, limit=(2 ** 20, "available")) is None  # this process cannot
    fixed = make_tiles(tiling, 640)
    needed = worker_bytes(backend, losses, fixed, SHAPE, level.style_shapes)
    assert spread_on(parts, 2 ** 40, needed, tiles=fixed)[1:] == (2, needed)
    with pytest.raises(ResourceError, match=r"^not enough memory on the cluster's workers: a 1300x900 px level "
                                            r"tiled 3x2, .* the smallest of 2 has .*use a smaller --tile-size"):
        spread_on(parts, 2 ** 40, needed - 1, tiles=fixed)


def test_a_level_too_small_for_a_tile_per_worker_runs_here(parts):
    backend, losses, _, tiling = parts
    small = Level(0, 300, (200, 300), ((200, 300),), 10, 0)
    assert spread(small, None, [(LBFGS(), None)], backend, losses, None, Machines("tcp://x:1", (None, None)),
                  tiling, auto=True) is None
    wide = Level(0, 600, (300, 600), ((300, 600),), 10, 0)  # room for two 256 px cores: one per worker
    assert spread(wide, None, [(LBFGS(), None)], backend, losses, None, Machines("tcp://x:1", (None, None)),
                  tiling, auto=True)[1] == 2


def test_the_client_of_a_cluster_holds_no_tile(parts):
    """Its targets and evaluations run on the workers: its memory is the image's and the optimizer's, the same
    whatever the tiles, while what the tiles cost this process when it runs them grows with them."""
    backend, losses, level, tiling = parts
    small, large = make_tiles(tiling, 256), make_tiles(tiling, 640)
    here = [client_bytes(backend, LBFGS(), losses, t, SHAPE, level.style_shapes, 10) for t in (small, large)]
    tiled = [tiled_bytes(backend, LBFGS(), losses, t, SHAPE, level.style_shapes, 10) for t in (small, large)]
    assert here[0] == here[1] and tiled[0] < tiled[1]


def test_the_client_of_a_cluster_holds_no_content_target(parts):
    """The content targets stay on the workers (each tile's where it was made): the client's figure is the
    same with or without a content term, while a worker's counts them."""
    backend, losses, level, tiling = parts
    tiles = make_tiles(tiling, 256)
    style_only = losses[1:]
    here = [client_bytes(backend, LBFGS(), terms, tiles, SHAPE, level.style_shapes, 10) for terms in (losses, style_only)]
    there = [worker_bytes(backend, terms, tiles, SHAPE, level.style_shapes) for terms in (losses, style_only)]
    assert here[0] == here[1]
    assert there[0] > there[1]
