"""The ``meancov`` style loss: its contract, gradients, blends, regions, and a real run on the tiny net."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from stylize import Job, events
from stylize.core import StyleTarget
from stylize.losses.gram import GramLoss
from stylize.losses.meancov import MeanCovLoss
from stylize.testing import LossContract, gradient_errors

from .test_masks import soft_regions


class TestMeanCovLoss(LossContract):
    """Includes finite differences in float64 and tiled (2x2 cores) equal to the whole."""

    loss_class = MeanCovLoss


def features(rng, shape=(4, 6, 5), offset=0.0):
    return {"a": (offset + rng.standard_normal(shape)).astype(np.float64)}


def w2_squared(f: np.ndarray, s: np.ndarray, eps: float) -> float:
    """The 2-Wasserstein distance of the Gaussian fits, written out with scipy's sqrtm (independent of the loss)."""
    f, s = f.reshape(f.shape[0], -1), s.reshape(s.shape[0], -1)
    cf, cs = (np.cov(x, bias=True) + eps * np.eye(len(x)) for x in (f, s))
    root = scipy.linalg.sqrtm(cs).real
    cross = scipy.linalg.sqrtm(root @ cf @ root).real
    diff = f.mean(axis=1) - s.mean(axis=1)
    return float(diff @ diff + np.trace(cf) + np.trace(cs) - 2 * np.trace(cross))


def test_value_is_the_scaled_wasserstein_distance():
    rng = np.random.default_rng(0)
    style, x = features(rng, (5, 7, 6), 1.0), features(rng, (5, 6, 5))
    loss = MeanCovLoss(["a"])
    loss.set_target(style)
    target = loss.targets["a"][0]
    assert loss(x)[0] == pytest.approx(target.scale * w2_squared(x["a"], style["a"], target.eps), rel=1e-8)


def test_a_zero_output_costs_what_it_costs_under_gram():
    """The scale that lets --ratio keep its meaning when gram is swapped for meancov."""
    rng = np.random.default_rng(1)
    style = {"a": np.abs(features(rng, (6, 8, 8), 0.5)["a"]), "b": 3 * np.abs(features(rng, (3, 4, 4))["a"])}
    zero = {layer: np.zeros_like(f[:, :5, :5]) for layer, f in style.items()}
    gram, meancov = GramLoss(["a", "b"]), MeanCovLoss(["a", "b"])
    gram.set_target(style)
    meancov.set_target(style)
    # Not exact: the diagonal EPS both fits hold costs about sqrt(EPS) tr(S^1/2) / tr(S) of it (0.5% here).
    assert meancov(zero)[0] == pytest.approx(gram(zero)[0], rel=2e-2)


def test_same_statistics_cost_nothing_and_the_arrangement_does_not_matter():
    rng = np.random.default_rng(2)
    style = features(rng, (3, 4, 6))
    shuffled = {"a": rng.permutation(style["a"].reshape(3, -1), axis=1).reshape(3, 6, 4)}
    loss = MeanCovLoss(["a"])
    loss.set_target(style)
    assert loss(shuffled)[0] == pytest.approx(0.0, abs=1e-10)
    assert loss(features(rng, (3, 6, 4), 2.0))[0] > 1e-3


def test_blended_target_is_the_fit_of_the_mixture():
    """Two same-size styles at 1/2 each: the fit of all their positions together."""
    rng = np.random.default_rng(3)
    a, b = features(rng, (4, 5, 5)), features(rng, (4, 5, 5), 2.0)
    blended, pooled = MeanCovLoss(["a"]), MeanCovLoss(["a"])
    blended.set_style_targets([StyleTarget(a, 0.5), StyleTarget(b, 0.5)], None)
    pooled.set_target({"a": np.concatenate([a["a"], b["a"]], axis=2)})
    got, want = blended.targets["a"][0], pooled.targets["a"][0]
    assert np.allclose(got.mean, want.mean) and np.allclose(got.cov, want.cov)
    lopsided = MeanCovLoss(["a"])
    lopsided.set_style_targets([StyleTarget(a, 0.9), StyleTarget(b, 0.1)], None)
    assert np.allclose(lopsided.targets["a"][0].mean, 0.9 * a["a"].mean(axis=(1, 2)) + 0.1 * b["a"].mean(axis=(1, 2)))


def test_masked_and_blended_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    loss = MeanCovLoss(["a"])
    styles = [StyleTarget(features(rng, (4, 8, 7), w), w, soft_regions(rng, (16, 14))) for w in (0.7, 0.3)]
    loss.set_style_targets(styles, soft_regions(rng, (12, 10)))
    x = features(rng, (4, 6, 5))
    value, grads = loss(x)
    assert value > 0
    errors = gradient_errors(lambda v: loss({"a": v})[0], x["a"], grads["a"].astype(np.float64), eps=1e-6, count=30)
    assert errors.max() < 1e-6, errors


def test_fewer_positions_than_channels_keeps_a_finite_exact_gradient():
    """A coarse level's deep layer: 6 positions, 8 channels (singular covariances)."""
    rng = np.random.default_rng(5)
    loss = MeanCovLoss(["a"])
    loss.set_target(features(rng, (8, 2, 3)))
    x = features(rng, (8, 3, 2), 0.5)
    value, grads = loss(x)
    assert np.isfinite(value) and np.isfinite(grads["a"]).all()
    errors = gradient_errors(lambda v: loss({"a": v})[0], x["a"], grads["a"].astype(np.float64), eps=1e-6, count=30)
    assert np.median(errors) < 1e-5, errors


def test_a_real_run_through_the_job_lowers_the_style_term(tiny_net, photos):
    prototxt, weights = tiny_net
    job = Job(photos["coffee"], photos["astronaut"], losses=["meancov"], length=48, iterations=12, scales=1,
              backend="caffe", content_layers=["conv2"], style_layers=["conv1", "conv2"], threads=1,
              options={"caffe": {"prototxt": prototxt, "weights": weights}})
    seen = []
    image = job.run(seen.append)
    steps = [e for e in seen if isinstance(e, events.Step)]
    assert isinstance(seen[-1], events.Finished) and image.shape[:2] == job.plan.levels[-1].shape
    assert set(steps[0].terms) == {"content", "meancov"}
    # The tiny net's random sigmoid features barely follow the pixels: gram moves as little (about 1%) here.
    values = [s.terms["meancov"] for s in steps]
    assert values[-1] < 0.998 * values[0] and all(np.isfinite(values)), values


def test_tiled_objective_equals_the_whole_on_the_tiny_net(tiny_net):
    """Real tiles of a real network (4x6, halos), two blended styles and two regions: the untiled result."""
    from stylize.backends.caffe_net import CaffeBackend
    from stylize.core.evaluation.objective import WeightedLoss, make_objective
    from stylize.core.evaluation.tiled_objective import make_tiled_objective
    from stylize.core.evaluation.tiling import make_tiles

    from .test_tiling import LAYERS, images, masks

    prototxt, weights = tiny_net
    backend = CaffeBackend(LAYERS, prototxt=prototxt, weights=weights)
    content, styles, start = images()
    regions, style_regions = masks()
    kw = dict(style_weights=[3, 1], regions=regions, style_regions=style_regions)
    x = backend.preprocess(start)
    value, grad = make_objective(backend, [WeightedLoss("meancov", MeanCovLoss(LAYERS), 1e3)], content, styles,
                                 **kw)(x)
    grad = grad.copy()
    tiled = make_tiled_objective(backend, [WeightedLoss("meancov", MeanCovLoss(LAYERS), 1e3)], content, styles,
                                 make_tiles(backend.tiling(LAYERS), 12), **kw)
    assert tiled.grid.counts == (4, 6)
    tiled_value, tiled_grad = tiled(x)
    assert value > 0 and tiled_value == pytest.approx(value, rel=1e-5)
    assert np.abs(tiled_grad - grad).max() <= 1e-4 * np.abs(grad).max()
