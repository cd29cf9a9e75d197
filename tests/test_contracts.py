"""stylize's own plugins against the reusable contract tests of ``stylize.testing``.

The same classes are what third-party authors run on their plugins (see
plugins.md and examples/stylize-example-plugin), so passing them here also
shows that the contract tests accept correct plugins.
"""
from __future__ import annotations

import numpy as np
import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.losses.tv import TotalVariationLoss
from stylize.optimizers.adam import Adam
from stylize.optimizers.lbfgs import LBFGS
from stylize.testing import BackendContract, LossContract, OptimizerContract


class TestContentLoss(LossContract):
    loss_class = ContentLoss


class TestGramLoss(LossContract):
    loss_class = GramLoss


class TestTotalVariationLoss(LossContract):
    loss_class = TotalVariationLoss
    has_target = False


class TestLBFGS(OptimizerContract):
    optimizer_class = LBFGS
    # What it reports to the memory estimate, in float32 images, plus the
    # transient float64 copy of x0 and the callback's snapshot (measured 86).
    state_arrays = LBFGS().memory_bytes(1) / 4 + 11


class TestAdam(OptimizerContract):
    optimizer_class = Adam  # with its default lr, on the pixel-scale quadratic
    state_arrays = 6.5  # x, best, m, v, scratch and one snapshot for the callback


class TestCaffeBackend(BackendContract):
    """The generic Caffe backend on the tiny smooth network of tests/tinynet.py."""

    backend_class = CaffeBackend
    layers = ("conv1", "conv2")
    image_size = (12, 10)

    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls, tiny_net):
        prototxt, weights = tiny_net

        def make(layers, **options):
            return CaffeBackend(layers, prototxt=prototxt, weights=weights, **options)
        return make

    def sample_input(self, backend, rng):
        # Pixel values (tens to hundreds) would saturate the tiny net's tanh.
        return rng.standard_normal((1, 3, *self.image_size)).astype(np.float32)


# -- the contracts catch broken plugins -------------------------------------------
# Ad-hoc contract subclasses (not named Test*, so pytest does not collect them)
# whose test methods are called directly and must fail.

class DoubledGradient(GramLoss):
    def __call__(self, features):
        value, grads = super().__call__(features)
        return value, {layer: 2 * g for layer, g in grads.items()}


class Float64Gradient(ContentLoss):
    def __call__(self, features):
        value, grads = super().__call__(features)
        return value, {layer: g.astype(np.float64) for layer, g in grads.items()}


class GradientForEverything(ContentLoss):
    def __call__(self, features):
        value, grads = super().__call__(features)
        return value, {**{k: np.zeros_like(v) for k, v in features.items()}, **grads}


class OddRole(ContentLoss):
    role = "texture"


@pytest.mark.parametrize("cls, test", [
    (DoubledGradient, "test_gradient_matches_finite_differences"),
    (Float64Gradient, "test_value_is_a_float_and_gradients_match_the_features"),
    (GradientForEverything, "test_ignores_inputs_it_does_not_read"),
    (OddRole, "test_role_is_valid"),
])
def test_loss_contract_catches(cls, test):
    contract = type("Check", (LossContract,), {"loss_class": cls})()
    with pytest.raises(AssertionError):
        getattr(contract, test)()


class IgnoresStopIteration(Adam):
    def minimize(self, objective, x0, bounds, iterations, callback):
        def swallow(result):
            try:
                callback(result)
            except StopIteration:
                pass
        return super().minimize(objective, x0, bounds, iterations, swallow)


class Unbounded(Adam):
    def minimize(self, objective, x0, bounds, iterations, callback):
        infinite = (np.full_like(x0, -np.inf), np.full_like(x0, np.inf))
        return super().minimize(objective, x0, infinite, iterations, callback)


class Strict(Adam):
    def __init__(self, lr=10.0):
        super().__init__(lr=lr)


@pytest.mark.parametrize("cls, test", [
    (IgnoresStopIteration, "test_stops_on_stopiteration_and_returns_the_best"),
    (Unbounded, "test_respects_the_bounds"),
    (Strict, "test_accepts_and_ignores_unknown_options"),
])
def test_optimizer_contract_catches(cls, test):
    contract = type("Check", (OptimizerContract,), {"optimizer_class": cls})()
    with pytest.raises((AssertionError, TypeError)):
        getattr(contract, test)()


def test_backend_contract_catches_a_wrong_adjoint(tiny_net):
    prototxt, weights = tiny_net

    class Unscaled(CaffeBackend):
        def image_gradient(self, grad):
            return super().image_gradient(grad) * 255  # forgot deprocess's 1/255

    backend = Unscaled(["conv1"], prototxt=prototxt, weights=weights)
    contract = type("Check", (BackendContract,), {"backend_class": Unscaled, "layers": ("conv1",),
                                                  "image_size": (12, 10)})()
    with pytest.raises(AssertionError, match="J\\^T g"):
        contract.test_image_gradient_is_the_adjoint_of_deprocess(backend)
