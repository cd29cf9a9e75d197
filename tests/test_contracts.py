"""stylize's own plugins against the reusable contract tests of ``stylize.testing``.

The same classes are what third-party authors run on their plugins (see
plugins.md and examples/stylize-example-plugin), so passing them here also
shows that the contract tests accept correct plugins.
"""
from __future__ import annotations

import numpy as np
import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.core import Option
from stylize.losses.affine import AffineLoss
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


class TestAffineLoss(LossContract):
    """An image term with a target (the content image), so the target tests run too."""

    loss_class = AffineLoss
    # The Laplacian is float32 and, at a random image, the value tiny: differences need a larger step.
    gradient_eps = 1e-3
    gradient_tolerance = 1e-3


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


class ForgetsItsTarget(AffineLoss):
    """Builds its Laplacian from the first content image only."""

    def set_target(self, features):
        if self.laplacian is None:
            super().set_target(features)


class OptionsTwice(ContentLoss):
    options = (Option("eps", float, 1.0), Option("eps", float, 2.0))


class RedeclaresWeight(ContentLoss):
    options = (Option("weight", float, 1.0),)


class StaleDefault(AffineLoss):
    options = (Option("epsilon", float, 1e-5),)  # the constructor's is 1e-7


class RefusedDefault(AffineLoss):
    options = (Option("epsilon", float, "tiny"),)


class NotAnOption(ContentLoss):
    options = ("eps",)


@pytest.mark.parametrize("cls, test, message", [
    (ForgetsItsTarget, "test_set_target_again_replaces_the_target", "second set_target"),
    (OptionsTwice, "test_declared_options_match_the_constructor", "declared twice"),
    (RedeclaresWeight, "test_declared_options_match_the_constructor", "the pipeline takes them"),
    (StaleDefault, "test_declared_options_match_the_constructor", "the constructor's is 1e-07"),
    (RefusedDefault, "test_declared_options_match_the_constructor", "refused by its own declaration"),
    (NotAnOption, "test_declared_options_match_the_constructor", "sequence of stylize.core.Option"),
])
def test_loss_contract_catches_image_targets_and_option_declarations(cls, test, message):
    contract = type("Check", (LossContract,), {"loss_class": cls})()
    with pytest.raises(AssertionError, match=message):
        getattr(contract, test)()


def test_image_losses_with_a_target_run_the_target_tests():
    """Only a loss without a target (tv) skips them."""
    affine = TestAffineLoss()
    affine.test_minimal_at_its_target()
    affine.test_set_target_again_replaces_the_target()
    with pytest.raises(pytest.skip.Exception):
        TestTotalVariationLoss().test_minimal_at_its_target()


def test_undeclared_options_skip_the_declaration_test():
    class Undeclared(ContentLoss):
        options = None

    with pytest.raises(pytest.skip.Exception, match="declares no options"):
        type("Check", (LossContract,), {"loss_class": Undeclared})().test_declared_options_match_the_constructor()


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


class DeclaresWhatItRefuses(Adam):
    options = (*Adam.options, Option("momentum", float, 0.9))

    def __init__(self, lr=10.0, beta1=0.9, beta2=0.999, eps=1e-8, decay=1.0):
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps, decay=decay)


@pytest.mark.parametrize("cls, test", [
    (IgnoresStopIteration, "test_stops_on_stopiteration_and_returns_the_best"),
    (Unbounded, "test_respects_the_bounds"),
    (Strict, "test_accepts_and_ignores_unknown_options"),
    (DeclaresWhatItRefuses, "test_declared_options_match_the_constructor"),
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
