"""The Caffe backend: forward to named blobs, backward to the image, checked numerically."""
import numpy as np
import pytest

from stylize.backends import cuda, prototxt
from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.caffe_vgg import VGG19
from stylize.backends.vgg_architecture import VGG19_BLOCKS, blob_names, vgg_prototxt
from stylize.core import ModelError, UsageError

from stylize.testing import gradient_errors as coordinate_check


def linear_probe(backend, layers, x, seed=0):
    """L(x) = sum_l <W_l, F_l(x)>: its feature gradient is W_l, so backward alone is tested."""
    rng = np.random.default_rng(seed)
    features = backend.forward(x, layers)
    probes = {layer: rng.standard_normal(f.shape).astype(np.float32) for layer, f in features.items()}

    def loss(v):
        out = backend.forward(v.astype(np.float32), layers)
        return sum(float(np.vdot(probes[k].astype(np.float64), out[k])) for k in layers)

    backend.forward(x, layers)
    grad = backend.backward(probes)
    return loss, grad


def test_tiny_network_backward_matches_finite_differences(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv1", "conv2"], prototxt=prototxt, weights=weights)
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 10)).astype(np.float32)
    loss, grad = linear_probe(backend, ["conv1", "conv2"], x)
    errors = coordinate_check(loss, x, grad, eps=1e-2, count=40)
    assert np.median(errors) < 1e-3 and errors.max() < 2e-2, errors


def test_single_deep_layer_and_input_reshape(tiny_net):
    """Backward through one injection point, at another image size than the prototxt's."""
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv2"], prototxt=prototxt, weights=weights)
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 14)).astype(np.float32)
    loss, grad = linear_probe(backend, ["conv2"], x)
    assert grad.shape == x.shape
    errors = coordinate_check(loss, x, grad, eps=1e-2, count=30)
    assert np.median(errors) < 1e-3, errors


def test_frozen_weights_get_no_gradient(tiny_net):
    """stylize's Caffe patch: lr_mult 0 keeps weight gradients off even with force_backward."""
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv2"], prototxt=prototxt, weights=weights)
    for blobs in backend.net.params.values():
        for blob in blobs:
            blob.diff[...] = 0
    x = np.ones((1, 3, 12, 10), np.float32)
    features = backend.forward(x, ["conv2"])
    grad = backend.backward({"conv2": np.ones_like(features["conv2"])})
    assert np.abs(grad).max() > 0
    assert all(np.abs(b.diff).max() == 0 for blobs in backend.net.params.values() for b in blobs)


def test_unknown_layer_lists_available(tiny_net):
    prototxt, weights = tiny_net
    with pytest.raises(UsageError, match="conv9.*available: conv1, pool1, conv2"):
        CaffeBackend(["conv9"], prototxt=prototxt, weights=weights)


def test_missing_files_and_gpu_are_clear_errors(tiny_net, tmp_path):
    prototxt, weights = tiny_net
    with pytest.raises(ModelError, match="weights file not found"):
        CaffeBackend(["conv1"], prototxt=prototxt, weights=tmp_path / "nope.caffemodel")
    with pytest.raises(UsageError, match=cuda.refusal_words()):
        CaffeBackend(["conv1"], prototxt=prototxt, weights=weights, gpu=0)


def test_preprocess_roundtrip_and_bounds(tiny_net):
    prototxt, weights = tiny_net
    backend = CaffeBackend(["conv1"], prototxt=prototxt, weights=weights)
    image = np.random.default_rng(3).random((5, 7, 3)).astype(np.float32)
    x = backend.preprocess(image)
    assert x.shape == (1, 3, 5, 7)
    # BGR order, 0..255, mean subtracted.
    assert x[0, 0, 2, 3] == pytest.approx(image[2, 3, 2] * 255 - 103.939, abs=1e-3)
    assert np.allclose(backend.deprocess(x), image, atol=1e-5)
    lower, upper = backend.input_bounds(x.shape)
    assert np.allclose(backend.deprocess(lower), 0) and np.allclose(backend.deprocess(upper), 1)


def test_prototxt_is_cut_after_deepest_layer_and_frozen():
    text = prototxt.prepare(vgg_prototxt(VGG19_BLOCKS), ["conv1_1", "conv3_1"])
    assert 'name: "relu3_1"' in text and "conv3_2" not in text
    assert text.count("lr_mult: 0") == 2 * 5  # weights and bias of five convolutions
    assert "force_backward: true" in text
    assert "pool: AVE" in text and "pool: MAX" in vgg_prototxt(VGG19_BLOCKS, "max")
    with pytest.raises(UsageError, match="conv6_1.*available: conv1_1"):
        prototxt.prepare(vgg_prototxt(VGG19_BLOCKS), ["conv6_1"])
    assert blob_names(VGG19_BLOCKS)[-1] == "pool5" and len(blob_names(VGG19_BLOCKS)) == 21


@pytest.mark.slow
def test_real_vgg19_backward_matches_finite_differences(vgg19_weights, photos):
    layers = ["conv1_1", "conv3_1", "conv4_2", "conv5_1"]
    backend = VGG19(layers, weights=vgg19_weights)
    x = backend.preprocess(photos["chelsea"][100:140:, 200:236])
    loss, grad = linear_probe(backend, layers, x)
    # ReLU kinks and float32 rounding make single coordinates noisy (about 1%);
    # a wrong injection or a missing layer would be off by far more.
    errors = coordinate_check(loss, x, grad, eps=0.25, count=40)
    assert np.median(errors) < 0.02 and np.quantile(errors, 0.8) < 0.05, np.sort(errors)
    # Along the gradient itself the slope must be |grad| (largest signal, least noise).
    direction = grad / np.linalg.norm(grad)
    slope = (loss(x + direction) - loss(x - direction)) / 2
    assert slope == pytest.approx(np.linalg.norm(grad), rel=0.02)


@pytest.mark.slow
def test_cut_network_gives_identical_features(vgg19_weights, photos):
    image = photos["coffee"][:64, :80]
    short = VGG19(["conv2_1"], weights=vgg19_weights)
    full = VGG19(["conv2_1", "conv5_1"], weights=vgg19_weights)
    assert len(short.net.layers) < len(full.net.layers)
    a = short.forward(short.preprocess(image), ["conv2_1"])["conv2_1"]
    b = full.forward(full.preprocess(image), ["conv2_1", "conv5_1"])["conv2_1"]
    assert np.array_equal(a, b)


# -- the options a Caffe backend declares, and what it estimates ----------------------------

def option_names(cls) -> list[str]:
    return [option.name for option in cls.options]


def test_caffe_backends_declare_their_options():
    from stylize.backends.bvlc import CaffeNet, GoogLeNet
    from stylize.backends.caffe_vgg import VGG16
    assert option_names(CaffeBackend) == ["prototxt", "weights", "model_dir", "precision"]
    files = CaffeBackend.options[:3]
    assert all(option.path and option.default is None and option.help for option in files)
    assert option_names(GoogLeNet) == option_names(CaffeNet) == option_names(CaffeBackend)
    assert option_names(VGG19) == option_names(VGG16) == ["prototxt", "weights", "model_dir", "precision",
                                                           "pooling"]
    pooling = VGG19.options[-1]
    assert (pooling.default, tuple(pooling.choices)) == ("avg", ("avg", "max"))


def test_declared_options_are_the_constructors_keywords(tiny_net, tmp_path):
    prototxt_file, weights = tiny_net
    given = {"prototxt": prototxt_file, "weights": weights, "model_dir": None, "precision": "fp32"}
    assert set(given) == set(option_names(CaffeBackend))
    assert CaffeBackend(["conv1"], **given).layers == ("conv1",)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tiny.caffemodel").write_bytes(open(weights, "rb").read())
    assert CaffeBackend(["conv2"], prototxt=prototxt_file, weights=None, model_dir=folder).layers == ("conv2",)


def test_vgg_pooling_option_changes_the_network(vgg19_weights, photos):
    image = photos["coffee"][:32, :40]
    features = {}
    for pooling in ("avg", "max"):
        backend = VGG19(["conv2_1"], prototxt=None, weights=vgg19_weights, model_dir=None, pooling=pooling)
        features[pooling] = backend.forward(backend.preprocess(image), ["conv2_1"])["conv2_1"].copy()
    assert not np.allclose(features["avg"], features["max"])


def test_check_options_refuses_a_model_dir_with_both_files():
    with pytest.raises(UsageError, match="--model-dir is not used when both --prototxt and --weights are given"):
        CaffeBackend.check_options({"prototxt": "a.prototxt", "weights": "a.caffemodel", "model_dir": "m"})
    with pytest.raises(UsageError, match="--model-dir supplies only the file you leave out"):
        VGG19.check_options({"prototxt": "a.prototxt", "weights": "a.caffemodel", "model_dir": "m",
                             "pooling": "max"})
    CaffeBackend.check_options({"prototxt": "a.prototxt", "weights": None, "model_dir": "m"})
    VGG19.check_options({"pooling": "max"})


def test_estimate_flops_is_the_cost_model(tiny_net):
    """The tiny network's count by hand (tests/test_costs.py), and four times the pixels, four times the work."""
    prototxt_file, weights = tiny_net
    backend = CaffeBackend(["conv1", "conv2"], prototxt=prototxt_file, weights=weights)
    forward, backward = 26400 + 480 + 480 + 10950 + 150, 29160 + 1440 + 480 + 11880 + 450
    assert backend.estimate_flops((12, 10)) == backend.costs_at((12, 10)).flops == forward + backward
    assert backend.estimate_flops((24, 20)) == 4 * (forward + backward)


def test_vgg19_estimate_flops_at_224_and_448(vgg19_weights):
    layers = sorted(set(VGG19.default_content_layers) | set(VGG19.default_style_layers))
    backend = VGG19(layers, weights=vgg19_weights)
    flops = backend.estimate_flops((224, 224))
    assert flops == backend.costs_at((224, 224)).flops
    # Forward up to conv5_1 is 189.5 GFLOPs at 512 px (tests/test_costs.py); backward about as much.
    assert flops == pytest.approx(2 * 189.5e9 * (224 / 512) ** 2, rel=0.03)
    assert backend.estimate_flops((448, 448)) / flops == pytest.approx(4, rel=0.01)
