"""The whole objective (backend + weighted losses) against finite differences.

STYLIZE_TEST_GPU=N runs the backends on GPU N (the CUDA build; bench/gpu.py does).
"""
import os

import numpy as np
import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.caffe_vgg import VGG19
from stylize.core.evaluation.objective import Objective, WeightedLoss
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.losses.tv import TotalVariationLoss

from stylize.testing import gradient_errors as coordinate_check

GPU = int(os.environ.get("STYLIZE_TEST_GPU", "-1"))


def objective_for(backend, content_x, style_x, content_layers, style_layers, ratio):
    content = ContentLoss(content_layers)
    content.set_target({k: v.copy() for k, v in backend.forward(content_x, content_layers).items()})
    style = GramLoss(style_layers)
    style.set_target({k: v.copy() for k, v in backend.forward(style_x, style_layers).items()})
    return Objective(backend, [WeightedLoss("content", content, 1.0), WeightedLoss("gram", style, ratio)])


def test_objective_gradient_on_smooth_network(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights, gpu=GPU)
    rng = np.random.default_rng(4)
    content_x, style_x, x = (rng.standard_normal((1, 3, 12, 10)).astype(np.float32) for _ in range(3))
    objective = objective_for(backend, content_x, style_x, ["conv2"], ["conv1", "conv2"], ratio=10.0)
    value, grad = objective(x)
    assert set(objective.terms) == {"content", "gram"} and value > 0
    assert value == pytest.approx(objective.terms["content"] + 10.0 * objective.terms["gram"], rel=1e-6)
    errors = coordinate_check(lambda v: objective(v)[0], x, grad, eps=1e-2, count=40)
    assert np.median(errors) < 1e-3 and errors.max() < 2e-2, errors


def test_objective_gradient_with_an_image_term(tiny_net):
    """An image-space loss (tv) joins through the backend's image_gradient."""
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights, gpu=GPU)
    rng = np.random.default_rng(6)
    content_x, style_x = (rng.standard_normal((1, 3, 12, 10)).astype(np.float32) for _ in range(2))
    objective = objective_for(backend, content_x, style_x, ["conv2"], ["conv1"], ratio=10.0)
    tv = TotalVariationLoss(())
    objective = Objective(backend, objective.losses + [WeightedLoss("tv", tv, 1e3)])
    # Inside the bounds, so deprocess does not clip.
    x = backend.preprocess(rng.uniform(0.2, 0.8, (12, 10, 3)).astype(np.float32))
    value, grad = objective(x)
    assert objective.terms["tv"] > 0
    errors = coordinate_check(lambda v: objective(v)[0], x, grad, eps=1e-1, count=40)
    # float32 inputs of size ~100: about 1e-3 noise; a wrong channel order or scale is O(1).
    assert np.median(errors) < 3e-3 and errors.max() < 2e-2, errors


@pytest.mark.slow
def test_objective_gradient_on_real_vgg19(vgg19_weights, photos, painting):
    content_layers = list(VGG19.default_content_layers)
    style_layers = list(VGG19.default_style_layers)
    backend = VGG19(content_layers + style_layers, weights=vgg19_weights, gpu=GPU)
    content_x = backend.preprocess(photos["astronaut"][60:108, 200:240])
    style_x = backend.preprocess(painting[20:68, 30:70])
    objective = objective_for(backend, content_x, style_x, content_layers, style_layers, ratio=1e4)
    x = content_x + np.random.default_rng(5).normal(0, 8, content_x.shape).astype(np.float32)
    value, grad = objective(x)

    def f(v):
        return objective(v)[0]
    # Relative to the total, float32 rounding and ReLU kinks cost about 1% per coordinate.
    errors = coordinate_check(f, x, grad, eps=0.25, count=30)
    assert np.median(errors) < 0.02 and np.quantile(errors, 0.8) < 0.06, np.sort(errors)
    direction = grad / np.linalg.norm(grad)
    slope = (f(x + 0.5 * direction) - f(x - 0.5 * direction)) / 1.0
    assert slope == pytest.approx(np.linalg.norm(grad), rel=0.02)
