"""Contract tests for plugin authors: subclass, set a few attributes, run pytest.

Each class holds the tests every plugin of its kind must pass: the promises
of ``stylize.core.contracts`` that the pipeline relies on, checked
numerically. Name your subclass ``Test...`` so pytest collects it::

    from stylize.testing import LossContract, OptimizerContract
    from stylize_example.meanstd import MeanStdLoss
    from stylize_example.spg import SPG

    class TestMeanStd(LossContract):
        loss_class = MeanStdLoss

    class TestSPG(OptimizerContract):
        optimizer_class = SPG

Override the attributes (tolerances, shapes, options) or the ``make_*`` and
``sample_*`` methods where your plugin needs it; a test that does not apply
to your plugin can be switched off by an attribute (see each class) or by
overriding it with ``pass``.

This module needs pytest, which stylize itself does not depend on: import it
only from tests.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import pytest

from stylize.core.contracts import (IMAGE, Backend, Features, Images, Loss, Optimizer, StartImage, StepResult, Window,
                                    tileable)
from stylize.core.errors import UsageError
from stylize.core.options import LOSS_OPTIONS, Option

__all__ = ["BackendContract", "LossContract", "OptimizerContract", "StartContract", "check_declared_options",
           "gradient_errors"]

#: An option no plugin has: plugins must accept and ignore options meant for others.
UNKNOWN_OPTION = "stylize_contract_unknown_option"


def gradient_errors(f, x: np.ndarray, grad: np.ndarray, eps: float, count: int = 20,
                    seed: int = 0) -> np.ndarray:
    """Relative errors of ``grad`` against central differences of ``f`` at ``count`` random coordinates.

    Each error is relative to the coordinate's own derivative, but never to
    less than a tenth of the mean gradient magnitude: where a derivative is
    nearly zero, rounding alone would otherwise look like a large error.
    """
    rng = np.random.default_rng(seed)
    floor = 0.1 * float(np.abs(grad).mean()) or 1e-12
    errors = []
    for index in rng.choice(x.size, size=min(count, x.size), replace=False):
        step = np.zeros_like(x)
        step.flat[index] = eps
        numeric = (float(f(x + step)) - float(f(x - step))) / (2 * eps)
        analytic = float(grad.flat[index])
        errors.append(abs(numeric - analytic) / max(floor, abs(numeric) + abs(analytic)))
    return np.array(errors)


def check_declared_options(plugin: type, construct: Callable[..., Any] | None = None,
                           reserved: Sequence[str] = ()) -> None:
    """What a plugin's ``options`` declaration promises (skipped when it declares none).

    Every entry is an ``Option``; names are unique and none is ``reserved``
    (taken by the pipeline); every default passes ``Option.convert`` unchanged
    and equals the constructor's default for that keyword, where the
    constructor names it; ``construct(**defaults)``, when given, accepts them all.
    """
    options = getattr(plugin, "options", None)
    if options is None:
        pytest.skip(f"{plugin.__name__} declares no options (options = None: passed on unchecked)")
    assert not isinstance(options, (str, Option)) and all(isinstance(o, Option) for o in options), \
        f"{plugin.__name__}.options must be a sequence of stylize.core.Option, got {options!r}"
    names = [option.name for option in options]
    twice = sorted({name for name in names if names.count(name) > 1})
    assert not twice, f"options declared twice: {twice}"
    clash = sorted(set(names) & set(reserved))
    assert not clash, f"{clash} are every plugin's of this kind (the pipeline takes them): do not declare them"
    try:
        parameters = inspect.signature(plugin).parameters
    except (TypeError, ValueError):
        parameters = {}
    for option in options:
        where = f"{plugin.__name__}.{option.name}"
        try:
            converted = option.convert(option.default, where)
        except UsageError as e:
            raise AssertionError(f"the default of {where} is refused by its own declaration: {e}") from None
        assert converted == option.default, \
            f"the default of {where}, {option.default!r}, converts to {converted!r}: declare it as its type"
        parameter = parameters.get(option.name)
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            assert parameter.default == option.default, \
                f"{where} is declared with default {option.default!r}, the constructor's is {parameter.default!r}"
    if construct is not None:
        construct(**{option.name: option.default for option in options})


# -- losses ---------------------------------------------------------------------

def _quarters(features: Features, layers: Sequence[str]):
    """(core features, windows) of the four quarters of every layer's grid."""
    for top in (True, False):
        for left in (True, False):
            cores, windows = {}, {}
            for layer in layers:
                h, w = features[layer].shape[1:]
                rows = slice(0, h // 2) if top else slice(h // 2, h)
                cols = slice(0, w // 2) if left else slice(w // 2, w)
                windows[layer] = Window(rows, cols, (h, w))
                cores[layer] = np.ascontiguousarray(features[layer][:, rows, cols])
            yield cores, windows


def _tile_sums(statistics, features: Features, layers: Sequence[str]) -> dict[str, np.ndarray]:
    """``statistics(cores, windows)`` summed over the quarters, in float64 (as the tiled objective sums)."""
    totals: dict[str, np.ndarray] = {}
    for cores, windows in _quarters(features, layers):
        for key, value in statistics(cores, windows).items():
            totals[key] = totals.get(key, 0.0) + np.asarray(value, np.float64)
    return totals


class LossContract:
    """Tests for a ``stylize.losses`` plugin.

    Set ``loss_class``; optionally ``options`` (constructor keywords),
    ``feature_shapes`` (CxHxW per layer, for content and style roles),
    ``image_shape`` (HxWx3, for the image role), ``zero_at_target`` (False if
    the loss is not zero when the features equal the target's; the test then
    only checks that the target is a stationary point, or override it),
    ``has_target`` (False for a loss without a target, such as total
    variation) and the gradient-check ``gradient_eps`` /
    ``gradient_tolerance`` (in float64). Override ``sample_features`` if your
    loss needs special inputs (for example non-negative features).

    As the pipeline does, every test gives the loss the run's images
    (``set_images``, from ``sample_images``) before its target. For an
    image-role loss the target image is both the content image and the only
    style image, so a loss that takes its target from ``images.styles`` (a
    colour-histogram loss) is tested at its target like one that takes the
    content image.
    """

    loss_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    feature_shapes: ClassVar[dict[str, tuple[int, int, int]]] = {"a": (3, 5, 4), "b": (6, 2, 3)}
    image_shape: ClassVar[tuple[int, int, int]] = (7, 9, 3)
    zero_at_target: ClassVar[bool] = True
    #: False for losses without a target (total variation): skips the target tests.
    has_target: ClassVar[bool] = True
    gradient_eps: ClassVar[float] = 1e-6
    gradient_tolerance: ClassVar[float] = 1e-5

    # -- hooks ----------------------------------------------------------------
    def make_loss(self, layers: Sequence[str], **options) -> Loss:
        if self.loss_class is None:
            raise NotImplementedError("set loss_class (or override make_loss) in your Test class")
        return self.loss_class(layers, **{**self.options, **options})

    @property
    def role(self) -> str:
        return getattr(self.loss_class or type(self.make_loss(())), "role", None)

    def layers(self) -> tuple[str, ...]:
        return () if self.role == "image" else tuple(self.feature_shapes)

    def sample_features(self, rng: np.random.Generator, dtype=np.float32,
                        scale: float = 1.0) -> dict[str, np.ndarray]:
        """Inputs the loss reads: features per layer, or the image under ``IMAGE``."""
        if self.role == "image":
            return {IMAGE: rng.random(self.image_shape).astype(dtype)}
        return {layer: (scale * rng.standard_normal(shape)).astype(dtype)
                for layer, shape in self.feature_shapes.items()}

    def sample_images(self, rng: np.random.Generator, target: Features) -> Images:
        """The run's images that ``set_images`` receives before ``target`` is set.

        Image role: ``target[IMAGE]`` as the content and the only style image.
        Other roles: random images, the style a little larger than the output.
        """
        if self.role == "image":
            return Images(target[IMAGE], [target[IMAGE]], [1.0])
        h, w, _ = self.image_shape
        return Images(rng.random(self.image_shape).astype(np.float32),
                      [rng.random((h + 3, w + 2, 3)).astype(np.float32)], [1.0])

    def set_targets(self, loss: Loss, target: Features, rng: np.random.Generator) -> None:
        """What the pipeline does at each coarse-to-fine level: the images, then the target."""
        loss.set_images(self.sample_images(rng, target))
        loss.set_target(target)

    def _loss_with_target(self, seed: int = 0, dtype=np.float32):
        rng = np.random.default_rng(seed)
        loss = self.make_loss(self.layers())
        target = self.sample_features(rng, dtype)
        features = self.sample_features(rng, dtype)
        self.set_targets(loss, target, rng)
        return loss, target, features

    def _read_keys(self, loss: Loss) -> set[str]:
        return {IMAGE} if self.role == "image" else set(loss.layers)

    # -- tests ----------------------------------------------------------------
    def test_implements_the_loss_contract(self):
        loss = self.make_loss(self.layers())
        assert isinstance(loss, Loss), f"{type(loss).__name__} is not a stylize.core.Loss"

    def test_role_is_valid(self):
        assert self.role in ("content", "style", "image"), \
            f"role must be 'content', 'style' or 'image', not {self.role!r}"

    def test_keeps_the_layers_it_is_given(self):
        loss = self.make_loss(self.layers())
        assert tuple(loss.layers) == self.layers(), \
            f"loss.layers is {loss.layers!r}, expected the layers passed in, {self.layers()!r}"

    def test_value_is_a_float_and_gradients_match_the_features(self):
        loss, _, features = self._loss_with_target()
        value, grads = loss(features)
        assert isinstance(value, float) and math.isfinite(value), \
            f"value must be a finite float, got {type(value).__name__} {value!r}"
        assert set(grads) == self._read_keys(loss), \
            f"gradients for {sorted(grads)}, expected one for each input read: {sorted(self._read_keys(loss))}"
        for key, grad in grads.items():
            assert isinstance(grad, np.ndarray), f"gradient of {key!r} is a {type(grad).__name__}"
            assert grad.shape == features[key].shape, \
                f"gradient of {key!r} has shape {grad.shape}, its input {features[key].shape}"
            assert grad.dtype == np.float32, \
                f"gradient of {key!r} is {grad.dtype}; float32 inputs need float32 gradients"
            assert np.isfinite(grad).all(), f"gradient of {key!r} is not finite"

    def test_ignores_inputs_it_does_not_read(self):
        """The pipeline passes the features of every loss's layers to every loss."""
        loss, _, features = self._loss_with_target()
        value, grads = loss(features)
        extra = dict(features, stylize_contract_other_layer=np.ones((2, 3, 3), np.float32))
        value2, grads2 = loss(extra)
        assert value2 == pytest.approx(value, rel=1e-6, abs=1e-12)
        assert set(grads2) == set(grads), "a gradient was returned for an input the loss does not read"

    def test_does_not_modify_its_inputs(self):
        loss, _, features = self._loss_with_target()
        before = {key: value.copy() for key, value in features.items()}
        loss(features)
        for key in features:
            assert np.array_equal(features[key], before[key]), f"the loss modified its input {key!r}"

    def test_returns_fresh_gradient_arrays(self):
        """The pipeline scales and sums gradients in place, so they must not alias the loss's state."""
        loss, _, features = self._loss_with_target()
        first = loss(features)[1]
        kept = {key: g.copy() for key, g in first.items()}
        for g in first.values():
            g *= 3.0
        second = loss(features)[1]
        for key, g in second.items():
            assert np.allclose(g, kept[key]), f"scaling a returned gradient changed the next one ({key!r})"
            assert not np.shares_memory(g, first[key]), f"gradient {key!r} is the same array each call"
            assert not any(np.shares_memory(g, f) for f in features.values()), \
                f"gradient {key!r} is a view of the input features"

    def test_gradient_matches_finite_differences(self):
        loss, _, features = self._loss_with_target(seed=1, dtype=np.float64)
        _, grads = loss(features)
        for key in self._read_keys(loss):
            def f(v, key=key):
                return loss({**features, key: v})[0]
            errors = gradient_errors(f, features[key], np.asarray(grads[key], np.float64),
                                     eps=self.gradient_eps, count=15)
            assert errors.max() < self.gradient_tolerance, \
                f"gradient of {key!r} differs from finite differences: relative errors {np.sort(errors)}"

    def test_minimal_at_its_target(self):
        if not self.has_target:
            pytest.skip("this loss has no target")
        loss, target, features = self._loss_with_target(seed=2, dtype=np.float64)
        at_target, grads = loss(target)
        elsewhere, _ = loss(features)
        if self.zero_at_target:
            assert at_target == pytest.approx(0, abs=1e-6 * max(1.0, elsewhere)), \
                f"value at the target is {at_target}, expected 0"
        assert at_target < elsewhere, "the target is not better than a random input"
        scale = max(float(np.abs(g).max()) for g in loss(features)[1].values())
        for key, grad in grads.items():
            assert np.abs(grad).max() <= 1e-4 * scale, f"gradient of {key!r} is not zero at the target"

    def test_honours_layer_weights(self):
        """``--set NAME.layers=...`` with weights arrives as ``layer_weights``; a zero weight silences a layer."""
        layers = self.layers()
        if len(layers) < 2:
            pytest.skip("needs a loss that reads at least two layers")
        rng = np.random.default_rng(5)
        target, features = self.sample_features(rng, np.float64), self.sample_features(rng, np.float64)
        weighted = self.make_loss(layers, layer_weights={layers[0]: 1.0})
        alone = self.make_loss(layers[:1])
        for loss in (weighted, alone):
            self.set_targets(loss, target, np.random.default_rng(6))
        value, grads = weighted(features)
        assert value == pytest.approx(alone(features)[0], rel=1e-6), \
            "with layer_weights {first: 1} the value differs from the loss of the first layer alone"
        for layer in layers[1:]:
            assert layer not in grads or not np.any(grads[layer]), f"{layer!r} has weight 0 but a gradient"

    def test_target_may_have_another_size(self):
        """Style targets come from the style image, whose size differs from the output's."""
        if self.role != "style":
            pytest.skip("only style terms compare features of images of different sizes")
        rng = np.random.default_rng(3)
        loss = self.make_loss(self.layers())
        self.set_targets(loss, {layer: rng.standard_normal((c, h + 3, w + 2)).astype(np.float32)
                                for layer, (c, h, w) in self.feature_shapes.items()}, rng)
        value, grads = loss(self.sample_features(rng))
        assert math.isfinite(value)
        assert all(grads[layer].shape == shape for layer, shape in self.feature_shapes.items())

    def test_style_images_may_have_other_sizes(self):
        """``set_images`` gives style images at their own sizes (``--style-scale``), blended by weight."""
        if self.role != "image":
            pytest.skip("only image terms compare the output with images")
        rng = np.random.default_rng(7)
        loss = self.make_loss(self.layers())
        target = self.sample_features(rng)
        h, w, _ = self.image_shape
        styles = [rng.random((h + 4, w + 1, 3)).astype(np.float32),
                  rng.random((max(1, h - 2), w, 3)).astype(np.float32)]
        loss.set_images(Images(target[IMAGE], styles, [0.25, 0.75]))
        loss.set_target(target)
        value, grads = loss(self.sample_features(rng))
        assert math.isfinite(value), f"value {value!r} with style images of other sizes"
        assert grads[IMAGE].shape == self.image_shape and np.isfinite(grads[IMAGE]).all()

    def test_set_target_again_replaces_the_target(self):
        """The pipeline sets new images and targets at every coarse-to-fine level."""
        if not self.has_target:
            pytest.skip("this loss has no target")
        loss, _, features = self._loss_with_target(seed=4)
        self.set_targets(loss, features, np.random.default_rng(8))
        value, _ = loss(features)
        if self.zero_at_target:
            assert value == pytest.approx(0, abs=1e-4), "the second set_target was not used"

    def test_tiled_evaluation_equals_the_whole(self):
        """A ``TiledLoss``: statistics summed over a 2x2 split of every layer's grid give the whole
        value, and the core gradients put together give the whole gradient (style targets too)."""
        if self.role == "image" or not tileable(self.make_loss(self.layers())):
            pytest.skip("not a TiledLoss: tiled runs refuse it with a clear message")
        loss, target, features = self._loss_with_target(seed=9)
        value, grads = loss(features)
        if self.role == "style":  # the target from statistics summed over the target's tiles
            tiled_loss = self.make_loss(self.layers())
            tiled_loss.set_images(self.sample_images(np.random.default_rng(9), target))
            tiled_loss.set_target_statistics([_tile_sums(
                lambda f, w: tiled_loss.target_statistics(f, w, 0), target, self.layers())])
        else:
            tiled_loss = loss
        totals = _tile_sums(tiled_loss.tile_statistics, features, self.layers())
        assert tiled_loss.tile_value(totals) == pytest.approx(value, rel=1e-5, abs=1e-9), \
            "tile_value of the summed statistics differs from the whole image's value"
        for layer in self.layers():
            assembled = np.zeros_like(features[layer])
            for cores, windows in _quarters(features, self.layers()):
                part = tiled_loss.tile_gradient(cores, windows, totals)[layer]
                assert part.shape == cores[layer].shape, "tile_gradient must be shaped like the core"
                assembled[:, windows[layer].rows, windows[layer].cols] = part
            scale = float(np.abs(grads[layer]).max()) or 1.0
            assert np.abs(assembled - grads[layer]).max() <= 1e-5 * scale, \
                f"tile_gradient put together differs from the whole gradient at {layer}"

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): each at its default is accepted; ``weight``/``layers`` are not redeclared."""
        check_declared_options(self.loss_class or type(self.make_loss(self.layers())),
                               lambda **defaults: self.make_loss(self.layers(), **defaults),
                               reserved=[*(o.name for o in LOSS_OPTIONS), "layer_weights"])


# -- optimizers -----------------------------------------------------------------

class OptimizerContract:
    """Tests for a ``stylize.optimizers`` plugin, on small bounded problems.

    Set ``optimizer_class``; optionally ``options`` (constructor keywords used
    by every test), and for the quadratic test ``iterations`` and
    ``reduction`` (the fraction of the initial excess over the constrained
    optimum that may remain). The quadratic lives on the scale of pixel
    values (bounds -50..50, x0 within +-20, targets within +-80, curvatures
    0.5..2), like a Caffe network's input.
    """

    optimizer_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    iterations: ClassVar[int] = 100
    reduction: ClassVar[float] = 1e-2
    shape: ClassVar[tuple[int, ...]] = (1, 3, 4, 5)
    #: Most image-sized float32 arrays the optimizer may hold at once (including
    #: the snapshot it hands the callback); None skips the memory test. A
    #: 512 px image is 3 MB, so each array counts at full size.
    state_arrays: ClassVar[float | None] = None

    def make_optimizer(self, **options) -> Optimizer:
        if self.optimizer_class is None:
            raise NotImplementedError("set optimizer_class (or override make_optimizer) in your Test class")
        return self.optimizer_class(**{**self.options, **options})

    def quadratic(self, seed: int = 0):
        """(objective, x0, bounds, optimum): sum(c * (x - t)^2) on [-50, 50], a third of t outside."""
        rng = np.random.default_rng(seed)
        target = rng.uniform(-80, 80, self.shape)
        curvature = rng.uniform(0.5, 2.0, self.shape)
        lower = np.full(self.shape, -50, np.float32)
        upper = np.full(self.shape, 50, np.float32)
        x0 = rng.uniform(-20, 20, self.shape).astype(np.float32)
        evaluated = []

        def objective(x):
            assert x.shape == self.shape, f"objective called with shape {x.shape}, expected {self.shape}"
            evaluated.append(np.array(x, copy=True))
            d = x.astype(np.float64) - target
            return float(np.sum(curvature * d * d)), (2 * curvature * d).astype(np.float32)

        objective.evaluated = evaluated
        return objective, x0, (lower, upper), np.clip(target, lower, upper)

    def _minimize(self, objective, x0, bounds, iterations, callback=None, **options):
        return self.make_optimizer(**options).minimize(objective, x0, bounds, iterations,
                                                       callback or (lambda result: None))

    def test_implements_the_optimizer_contract(self):
        assert isinstance(self.make_optimizer(), Optimizer)

    def test_reduces_a_bounded_quadratic(self):
        objective, x0, bounds, optimum = self.quadratic()
        best = objective(optimum)[0]
        start = objective(x0)[0]
        x = self._minimize(objective, x0, bounds, self.iterations)
        assert isinstance(x, np.ndarray) and x.shape == x0.shape and x.dtype == np.float32, \
            f"minimize must return a float32 array of x0's shape, got {type(x).__name__} " \
            f"{getattr(x, 'shape', '')} {getattr(x, 'dtype', '')}"
        excess = objective(x)[0] - best
        assert excess <= self.reduction * (start - best), \
            f"after {self.iterations} iterations {excess:.4g} above the optimum, from {start - best:.4g}"

    def test_respects_the_bounds(self):
        """A linear objective pushes every coordinate out: nothing evaluated, reported or returned leaves the box."""
        rng = np.random.default_rng(1)
        slope = rng.choice([-1.0, 1.0], self.shape) * rng.uniform(0.5, 2, self.shape)
        lower = np.full(self.shape, -10, np.float32)
        upper = np.full(self.shape, 20, np.float32)
        evaluated, reported = [], []

        def objective(x):
            evaluated.append(np.array(x, copy=True))
            return float(np.sum(slope * x)), slope.astype(np.float32)

        x0 = rng.uniform(-5, 15, self.shape).astype(np.float32)
        x = self._minimize(objective, x0, (lower, upper), 30, lambda r: reported.append(r.x.copy()))
        for what, arrays in (("evaluated", evaluated), ("reported", reported), ("returned", [x])):
            for array in arrays:
                assert np.all(array >= lower) and np.all(array <= upper), f"{what} x outside the bounds"
        pushed = np.where(slope > 0, lower, upper)
        assert np.abs(x - pushed).max() <= 0.05 * 30, "the result is not at the bounds it was pushed to"

    def test_calls_back_once_per_step_with_increasing_steps(self):
        objective, x0, bounds, _ = self.quadratic(seed=2)
        results = []
        self._minimize(objective, x0, bounds, 10, results.append)
        assert 1 <= len(results) <= 10, f"{len(results)} callbacks for 10 iterations"
        assert [r.step for r in results] == list(range(1, len(results) + 1)), \
            f"steps {[r.step for r in results]}; expected 1, 2, 3, ..."
        for r in results:
            assert isinstance(r, StepResult)
            assert isinstance(r.value, float) and math.isfinite(r.value)
            assert r.x.shape == x0.shape and r.x.dtype == np.float32
            assert r.value == pytest.approx(objective(r.x)[0], rel=1e-4), \
                "a step's value is not the objective at its x"

    def test_stops_on_stopiteration_and_returns_the_best(self):
        objective, x0, bounds, _ = self.quadratic(seed=3)
        results = []

        def stop_at_three(result):
            results.append(result)
            if result.step == 3:
                raise StopIteration

        x = self._minimize(objective, x0, bounds, 50, stop_at_three)
        assert [r.step for r in results] == [1, 2, 3], "StopIteration did not stop the optimizer"
        assert objective(x)[0] <= min(r.value for r in results) * (1 + 1e-6), \
            "the returned x is worse than a reported step"

    def test_does_not_modify_x0(self):
        objective, x0, bounds, _ = self.quadratic(seed=4)
        before = x0.copy()
        self._minimize(objective, x0, bounds, 5)
        assert np.array_equal(x0, before)

    def test_state_memory_is_bounded(self):
        """Peak Python allocations over a run, with an objective that allocates nothing."""
        if self.state_arrays is None:
            pytest.skip("state_arrays not set")
        import tracemalloc
        shape = (1, 3, 128, 128)
        grads = [np.ones(shape, np.float32), np.full(shape, 0.5, np.float32)]
        calls = []

        def objective(x):  # preallocated gradients: only the optimizer's own memory counts
            calls.append(1)
            return float(np.sum(x)), grads[len(calls) % 2]

        x0 = np.zeros(shape, np.float32)
        bounds = (np.full(shape, -1e6, np.float32), np.full(shape, 1e6, np.float32))
        tracemalloc.start()
        try:
            self.make_optimizer().minimize(objective, x0, bounds, 20, lambda r: None)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < self.state_arrays * x0.nbytes, \
            f"peak {peak / x0.nbytes:.1f} image-sized arrays, allowed {self.state_arrays}"

    def test_accepts_and_ignores_unknown_options(self):
        objective, x0, bounds, _ = self.quadratic(seed=5)
        x = self._minimize(objective, x0, bounds, 3, **{UNKNOWN_OPTION: 1})
        assert x.shape == x0.shape

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): unique, each default valid, equal to the constructor's and accepted."""
        check_declared_options(self.optimizer_class or type(self.make_optimizer()), self.make_optimizer)


# -- backends -------------------------------------------------------------------
def _reset_peak_memory() -> bool:
    """Reset this process's peak resident memory (VmHWM); False where the system does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_memory() -> int:
    """This process's peak resident memory since the last reset, in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))



class BackendContract:
    """Tests for a ``stylize.backends`` plugin.

    Set ``backend_class`` and ``options`` (constructor keywords, e.g. the
    weights), or override the class-scoped fixture ``make_backend`` (a
    factory ``make(layers, **options)``; it may use your own fixtures).
    Write fixtures as ``@pytest.fixture(scope="class")`` over ``@classmethod``.
    ``layers`` defaults to the class's default content and style layers;
    ``image_size`` is the HxW of the test input. ``sample_input`` gives the
    network input for the gradient check; override it when random images
    saturate your network. ``gradient_eps``, ``gradient_median_tolerance``
    and ``gradient_max_tolerance`` bound the relative errors of back-propagation
    against central differences in float32: the median, and all but the
    noisiest ``1 - gradient_quantile`` of the coordinates (a ReLU's kink
    makes a few single coordinates noisy). The defaults are what the real
    VGG19 in float32 passes with a margin (median about 3e-3, 90% under 2.5e-2)
    while a gradient off by a factor of 2 (errors of 0.33) fails.

    The optional methods are checked when a backend has them: ``tiling``
    against a probe of the receptive field (pixels outside a core's reach
    must not change its features; pixels one stride inside it must), at an
    input of ``tiling_probe_size`` (None: just large enough);
    ``estimate_peak_bytes`` against the process's peak resident memory
    over a forward and backward at ``memory_probe_size``, within
    ``memory_tolerance`` of it; ``estimate_flops`` and ``arithmetic`` for
    their types and growth with the area.
    """

    backend_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    layers: ClassVar[Sequence[str] | None] = None
    image_size: ClassVar[tuple[int, int]] = (16, 12)
    gradient_eps: ClassVar[float] = 1e-1
    gradient_median_tolerance: ClassVar[float] = 1e-2
    gradient_max_tolerance: ClassVar[float] = 5e-2
    gradient_quantile: ClassVar[float] = 0.9
    tiling_probe_size: ClassVar[tuple[int, int] | None] = None
    memory_probe_size: ClassVar[tuple[int, int]] = (64, 48)
    #: The measured peak, and its growth from one size to the next, may exceed the estimate's by this
    #: share; the estimated growth may be up to twice the measured (estimates keep margins).
    memory_tolerance: ClassVar[float] = 0.25

    @classmethod
    def requested_layers(cls) -> list[str]:
        if cls.layers is not None:
            return list(cls.layers)
        cls = cls.backend_class
        return list(dict.fromkeys([*cls.default_content_layers, *cls.default_style_layers]))

    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls):
        if cls.backend_class is None:
            raise NotImplementedError("set backend_class (or override the make_backend fixture)")

        def make(layers, **options) -> Backend:
            return cls.backend_class(layers, **{**cls.options, **options})
        return make

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, make_backend):
        return make_backend(cls.requested_layers(), gpu=-1)  # the pipeline always passes gpu

    def sample_image(self, rng: np.random.Generator, size=None, low=0.0, high=1.0) -> np.ndarray:
        h, w = size or self.image_size
        return rng.uniform(low, high, (h, w, 3)).astype(np.float32)

    def sample_input(self, backend: Backend, rng: np.random.Generator) -> np.ndarray:
        return backend.preprocess(self.sample_image(rng))

    # -- tests ----------------------------------------------------------------
    def test_implements_the_backend_contract(self, backend):
        assert isinstance(backend, Backend)

    def test_default_layers_are_class_attributes(self):
        cls = self.backend_class or type(None)
        for name in ("default_content_layers", "default_style_layers"):
            layers = getattr(cls, name, None)
            assert layers is not None and all(isinstance(layer, str) for layer in layers), \
                f"{name} must be a class attribute listing layer names (read before construction)"

    def test_forward_returns_the_requested_layers(self, backend):
        x = backend.preprocess(self.sample_image(np.random.default_rng(0)))
        layers = self.requested_layers()
        for wanted in (layers, layers[-1:], layers[:1]):
            features = backend.forward(x, wanted)
            assert set(features) == set(wanted), f"asked for {wanted}, got {sorted(features)}"
            for layer, f in features.items():
                assert f.ndim == 3, f"{layer}: features must be CxHxW, got shape {f.shape}"
                assert f.dtype == np.float32 and np.isfinite(f).all(), f"{layer}: not finite float32"

    def test_forward_follows_the_input_size(self, backend):
        """One backend serves every coarse-to-fine level: the input size may change between calls."""
        rng = np.random.default_rng(1)
        layer = self.requested_layers()[0]
        h, w = self.image_size
        small = backend.forward(backend.preprocess(self.sample_image(rng, (h, w))), [layer])[layer].shape
        large = backend.forward(backend.preprocess(self.sample_image(rng, (2 * h, 2 * w))), [layer])[layer].shape
        assert large[1] > small[1] and large[2] > small[2], f"{layer}: {small} then {large}"

    def test_preprocess_deprocess_roundtrip(self, backend):
        image = self.sample_image(np.random.default_rng(2))
        x = backend.preprocess(image)
        assert x.shape == (1, 3, *self.image_size) and x.dtype == np.float32, \
            f"preprocess must give a 1x3xHxW float32 array, got {x.shape} {x.dtype}"
        back = backend.deprocess(x)
        assert back.shape == image.shape, f"deprocess gave {back.shape}, expected {image.shape}"
        assert np.allclose(back, image, atol=1e-4), "deprocess(preprocess(image)) != image"

    def test_bounds_hold_every_image(self, backend):
        shape = (1, 3, *self.image_size)
        lower, upper = (np.broadcast_to(b, shape) for b in backend.input_bounds(shape))
        assert np.all(lower < upper)
        for fill in (0.0, 1.0):
            x = backend.preprocess(np.full((*self.image_size, 3), fill, np.float32))
            assert np.all(x >= lower - 1e-3) and np.all(x <= upper + 1e-3), \
                f"the image of all {fill} is outside input_bounds"
        for b in (lower, upper):
            image = backend.deprocess(np.ascontiguousarray(b, dtype=np.float32))
            assert image.min() >= 0 and image.max() <= 1

    def test_backward_matches_finite_differences(self, backend):
        rng = np.random.default_rng(3)
        layers = self.requested_layers()
        x = self.sample_input(backend, rng)
        probes = {layer: rng.standard_normal(f.shape).astype(np.float32)
                  for layer, f in backend.forward(x, layers).items()}

        def loss(v):  # linear in the features, so its feature gradient is the probe
            out = backend.forward(v.astype(np.float32), layers)
            return sum(float(np.vdot(probes[k].astype(np.float64), out[k])) for k in layers)

        backend.forward(x, layers)
        grad = backend.backward(probes)
        assert grad.shape == x.shape and grad.dtype == np.float32, \
            f"backward must return dLoss/dx like x ({x.shape} float32), got {grad.shape} {grad.dtype}"
        errors = gradient_errors(loss, x, grad, eps=self.gradient_eps, count=40)
        assert np.median(errors) < self.gradient_median_tolerance and \
            np.quantile(errors, self.gradient_quantile) < self.gradient_max_tolerance, \
            f"backward differs from finite differences; relative errors {np.sort(errors)}"

    def test_image_gradient_is_the_adjoint_of_deprocess(self, backend):
        """<g, J_deprocess d> == <image_gradient(g), d> for x inside the bounds."""
        rng = np.random.default_rng(4)
        x = backend.preprocess(self.sample_image(rng, low=0.25, high=0.75))
        lower, upper = (np.broadcast_to(b, x.shape) for b in backend.input_bounds(x.shape))
        span = float(np.median(upper - lower)) if np.isfinite(upper - lower).all() else 1.0
        h = 0.01 * span
        d = rng.uniform(-1, 1, x.shape).astype(np.float32)
        g = rng.standard_normal((*self.image_size, 3)).astype(np.float32)
        jd = (backend.deprocess(x + h * d).astype(np.float64)
              - backend.deprocess(x - h * d).astype(np.float64)) / (2 * h)
        adjoint = backend.image_gradient(g)
        assert adjoint.shape == x.shape and adjoint.dtype == np.float32, \
            f"image_gradient must return an array like x ({x.shape} float32), got {adjoint.shape} {adjoint.dtype}"
        lhs = float(np.vdot(g.astype(np.float64), jd))
        rhs = float(np.vdot(adjoint.astype(np.float64), d))
        assert rhs == pytest.approx(lhs, rel=1e-3), f"<g, J d> = {lhs} but <J^T g, d> = {rhs}"

    def test_accepts_and_ignores_unknown_options(self, make_backend):
        backend = make_backend(self.requested_layers()[:1], **{UNKNOWN_OPTION: 1})
        assert isinstance(backend, Backend)

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): unique, each default valid and equal to the constructor's.

        Not constructed with them: backends load weights, and the options a
        test passes (weights, prototxt) would collide with the defaults.
        """
        if self.backend_class is None:
            pytest.skip("backend_class not set")
        check_declared_options(self.backend_class)

    def test_accepts_threads(self, make_backend):
        """The run passes every backend ``threads`` (``--threads``; None: the backend's own choice)."""
        layer = self.requested_layers()[0]
        backend = make_backend([layer], threads=1)
        x = backend.preprocess(self.sample_image(np.random.default_rng(5)))
        assert np.isfinite(backend.forward(x, [layer])[layer]).all()

    def test_features_without_a_backward_equal_the_forward(self, backend):
        """``features`` is ``forward`` when no backward follows (targets, a tiled statistics pass)."""
        x = backend.preprocess(self.sample_image(np.random.default_rng(6)))
        layers = self.requested_layers()
        kept = {layer: f.copy() for layer, f in backend.forward(x, layers).items()}
        got = backend.features(x, layers)
        assert set(got) == set(layers), f"features() gave {sorted(got)} for {layers}"
        for layer in layers:
            assert np.allclose(got[layer], kept[layer], rtol=1e-5, atol=1e-6), f"{layer}: features() != forward()"

    def test_tiling_matches_a_probe_of_the_receptive_field(self, backend):
        """Redrawing every pixel farther than ``radius`` from a core leaves its features; one stride nearer
        changes them (a radius that understates breaks tiled runs, one that overstates wastes them)."""
        layers = self.requested_layers()
        tiling = backend.tiling(layers)
        if tiling is None:
            pytest.skip("tiling() is None: images are always evaluated whole")
        step, radius = tiling.stride, tiling.radius
        assert set(tiling.strides) == set(layers) and all(step % s == 0 for s in tiling.strides.values()), \
            f"every layer's stride must divide the tile stride {step}: {dict(tiling.strides)}"
        side = -(-(2 * radius + 3 * step) // step) * step
        size = self.tiling_probe_size or (side, side)
        image = self.sample_image(np.random.default_rng(7), size)
        other = self.sample_image(np.random.default_rng(8), size)
        top, left = (size[0] // 2) // step * step, (size[1] // 2) // step * step

        def cores(picture):  # the features at positions s * i inside the core [top, top + step) x [left, ...)
            features = backend.forward(backend.preprocess(picture), layers)
            return {layer: f[:, top // s:(top + step) // s, left // s:(left + step) // s].astype(np.float64)
                    for layer, f in features.items() for s in [tiling.strides[layer]]}

        grids = {layer: f.shape[1:] for layer, f in backend.forward(backend.preprocess(image), layers).items()}
        assert grids == {layer: tuple(g) for layer, g in tiling.grid(size).items()}, \
            f"tiling().grid({size}) = {dict(tiling.grid(size))}, the forward's grids {grids}"
        before = cores(image)

        def change(reach: int) -> dict[str, float]:
            keep = np.zeros(size, bool)
            keep[max(0, top - reach):top + step + reach, max(0, left - reach):left + step + reach] = True
            after = cores(np.where(keep[..., None], image, other))
            return {layer: float(np.abs(after[layer] - f).max() / (np.abs(f).max() or 1.0))
                    for layer, f in before.items()}

        outside = change(radius)
        assert max(outside.values()) <= 1e-5, \
            f"tiling() says radius {radius}, but pixels beyond it change a core's features: {outside}"
        if radius >= step:
            inside = change(radius - step)
            assert max(inside.values()) > 1e-4, \
                f"tiling() says radius {radius}, but no pixel beyond {radius - step} changes a core's features"

    def test_memory_estimate_covers_a_measured_peak(self, make_backend):
        """``estimate_peak_bytes`` against this process's peak resident memory (VmHWM, reset before each
        evaluation) over a forward and backward on a fresh backend, at two sizes: never below it."""
        if getattr(self.backend_class or object, "estimate_peak_bytes", None) is Backend.estimate_peak_bytes:
            pytest.skip("estimate_peak_bytes is not implemented")
        layers = self.requested_layers()
        backend = make_backend(layers, gpu=-1)
        h, w = self.memory_probe_size
        sizes = [(h, w), (2 * h, 2 * w)]
        estimates = [backend.estimate_peak_bytes(size) for size in sizes]
        if estimates[0] is None:
            pytest.skip("estimate_peak_bytes gives None (unknown) here")
        rng = np.random.default_rng(9)
        peaks = []
        for size in sizes:
            x = backend.preprocess(self.sample_image(rng, size))
            if not _reset_peak_memory():
                pytest.skip("this system cannot reset the peak resident memory (/proc/self/clear_refs)")
            grads = {layer: np.ones(f.shape, np.float32) for layer, f in backend.forward(x, layers).items()}
            backend.backward(grads)
            peaks.append(_peak_memory())
            del grads
        tolerance = self.memory_tolerance
        for size, estimate, peak in zip(sizes, estimates, peaks):
            assert peak <= estimate * (1 + tolerance), \
                f"at {size} the process peaked at {peak / 2**20:.0f} MiB, estimated {estimate / 2**20:.0f} MiB"
        # No check of the growth between the sizes: the allocator keeps and reuses the first size's
        # memory, so the second peak's growth over the first is not repeatable (seen: 3 to 12 MiB for
        # the same run); the bound each size must meet is what a plan relies on.

    def test_cost_estimates_grow_with_the_area(self, backend):
        """``estimate_flops`` (if known) about quadruples when both sides double; ``arithmetic`` is a string."""
        h, w = self.image_size
        assert isinstance(backend.arithmetic((h, w)), str), "arithmetic() must return a string ('' ordinary)"
        flops = [backend.estimate_flops((h, w)), backend.estimate_flops((2 * h, 2 * w))]
        if flops[0] is None:
            pytest.skip("estimate_flops is not implemented")
        assert all(isinstance(f, (int, np.integer)) and f > 0 for f in flops), f"estimate_flops gave {flops}"
        assert 3 <= flops[1] / flops[0] <= 5, f"estimate_flops at 2x the sides is {flops[1] / flops[0]:.2f}x"


# -- starts ---------------------------------------------------------------------

class StartContract:
    """Tests for a ``stylize.starts`` plugin (``--init NAME``): a picture of the asked shape, in [0, 1].

    Set ``start_class``; optionally ``options`` (constructor keywords used by
    every test) and ``random = True`` for a start that draws from the seed
    (then equal seeds must give equal pictures, and others another one).
    ``sample_images`` makes the run's images: a content and two styles of
    other sizes, blended 3:1, as the core hands them over.
    """

    start_class: ClassVar[type | None] = None
    options: ClassVar[dict[str, Any]] = {}
    random: ClassVar[bool] = False

    def make_start(self, **options) -> StartImage:
        if self.start_class is None:
            raise NotImplementedError("set start_class (or override make_start) in your Test class")
        return self.start_class(**{**self.options, **options})

    def sample_images(self, rng: np.random.Generator) -> Images:
        """A smooth content (48x64) and two styles (40x40, 72x50) with weights 0.75, 0.25."""
        def picture(h, w):
            y, x = np.mgrid[0:h, 0:w] / max(h, w)
            base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in range(3)], axis=-1)
            return np.clip(0.5 + 0.4 * base + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)
        return Images(picture(48, 64), [picture(40, 40), picture(72, 50)], [0.75, 0.25])

    def _image(self, shape=(32, 40), seed: int | None = 0, images: Images | None = None, **options):
        images = images if images is not None else self.sample_images(np.random.default_rng(0))
        return self.make_start(**options).image(images, shape, seed)

    def test_implements_the_start_contract(self):
        assert isinstance(self.make_start(), StartImage)

    @pytest.mark.parametrize("shape", [(32, 40), (48, 64), (70, 21)])
    def test_returns_float_rgb_of_the_shape_asked_in_0_1(self, shape):
        image = self._image(shape)
        assert isinstance(image, np.ndarray) and image.shape == (*shape, 3), \
            f"image({shape}) returned shape {getattr(image, 'shape', None)}, expected {(*shape, 3)}"
        assert np.issubdtype(image.dtype, np.floating), f"expected a float image, got {image.dtype}"
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0, \
            f"values must be finite and in [0, 1], got {image.min()}..{image.max()}"

    def test_is_a_picture_not_a_constant(self):
        image = self._image()
        assert float(image.std()) > 1e-3, "the start is one flat colour"

    def test_same_seed_same_picture(self):
        np.testing.assert_array_equal(self._image(seed=3), self._image(seed=3))
        if self.random:
            assert not np.array_equal(self._image(seed=3), self._image(seed=4)), "the seed changes nothing"

    def test_does_not_modify_its_inputs(self):
        images = self.sample_images(np.random.default_rng(1))
        before = [images.content.copy(), *(s.copy() for s in images.styles)]
        self._image(images=images)
        for was, now in zip(before, [images.content, *images.styles]):
            np.testing.assert_array_equal(was, now)

    def test_first_level_is_within_the_levels(self):
        for levels in (1, 2, 3, 5):
            first = self.make_start().first_level(levels)
            assert isinstance(first, int) and (0 <= first < levels or -levels <= first < 0), \
                f"first_level({levels}) = {first!r}: not a level of {levels}"

    def test_accepts_and_ignores_unknown_options(self):
        assert self._image(**{UNKNOWN_OPTION: 1}).shape == (32, 40, 3)

    def test_declared_options_match_the_constructor(self):
        """``options`` (if declared): unique, each default valid and equal to the constructor's."""
        check_declared_options(self.start_class or type(self.make_start()))
