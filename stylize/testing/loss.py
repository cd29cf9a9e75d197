"""LossContract: what every ``stylize.losses`` plugin must pass (gradients, targets, tiled evaluation, options)."""
from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import numpy as np
import pytest

from stylize.core.contracts import IMAGE, Features, Images, Loss, Window, tileable
from stylize.core.contracts.options import LOSS_OPTIONS
from .checks import check_declared_options, gradient_errors


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
