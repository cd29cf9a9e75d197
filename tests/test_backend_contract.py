"""The backend contract is generic in fact: the real VGG19 in float32 passes it, its optional methods are checked
(and a wrong one caught), --threads and "no backward follows" reach the backend, one flag per declaration."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.prototxt import parse
from stylize.backends.sizes import tiling as prototxt_tiling
from stylize.backends.caffe_vgg import VGG19
from stylize.backends.vgg_architecture import VGG19_BLOCKS, vgg_layers, vgg_prototxt
from stylize.cli.backend_options import declared_backend_options
from stylize.core import Option, PluginError, Step, chain_tiling
from stylize.core.evaluation.objective import WeightedLoss, make_backend, make_objective
from stylize.core.request.settings import Settings
from stylize.core.evaluation.tiled_objective import make_tiled_objective
from stylize.core.evaluation.tiling import make_tiles
from stylize.losses.content import ContentLoss
from stylize.losses.gram import GramLoss
from stylize.testing import BackendContract

TINY_LAYERS = ["conv1", "conv2"]


@pytest.mark.slow
class TestVGG19(BackendContract):
    """The built-in VGG19, float32, on small inputs: the default tolerances are what it passes."""

    backend_class = VGG19
    image_size = (32, 24)
    memory_probe_size = (96, 64)

    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls, vgg19_weights):
        def make(layers, **options):
            return VGG19(layers, weights=vgg19_weights, precision="fp32", **options)
        return make

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def one_thread(cls):
        """Tiny evaluations: a second BLAS thread only waits on the first (20x slower on a busy machine)."""
        from stylize.core.run.threads import run_threads
        with run_threads(1):
            yield


# -- the optional checks catch wrong claims --------------------------------------------------

@pytest.fixture(scope="module")
def make_tiny(tiny_net):
    prototxt, weights = tiny_net

    def make(layers, cls=CaffeBackend, **options):
        return cls(layers, prototxt=prototxt, weights=weights, **options)
    return make


def contract(**attributes) -> BackendContract:
    """An ad-hoc contract on the tiny net (not collected: its methods are called directly)."""
    return type("Check", (BackendContract,), {"backend_class": CaffeBackend, "layers": tuple(TINY_LAYERS),
                                               "image_size": (12, 10), **attributes})()


class ShortRadius(CaffeBackend):
    def tiling(self, layers):
        tiling = super().tiling(layers)
        return dataclasses.replace(tiling, radius=tiling.radius - 1)


class LongRadius(CaffeBackend):
    def tiling(self, layers):
        tiling = super().tiling(layers)
        return dataclasses.replace(tiling, radius=tiling.radius + 2 * tiling.stride)


class DoubledBackward(CaffeBackend):
    def backward(self, grads):
        return 2 * super().backward(grads)


def test_the_float32_tolerances_still_catch_a_wrong_backward(make_tiny):
    check = contract(sample_input=lambda self, backend, rng: rng.standard_normal((1, 3, 12, 10)).astype(np.float32))
    check.test_backward_matches_finite_differences(make_tiny(TINY_LAYERS))
    with pytest.raises(AssertionError, match="finite differences"):
        check.test_backward_matches_finite_differences(make_tiny(TINY_LAYERS, cls=DoubledBackward))


class TooLittleMemory(CaffeBackend):
    def estimate_peak_bytes(self, shape):
        return 2**20  # 1 MiB: less than any process running a network holds


def test_the_tiling_probe_passes_the_true_radius_and_catches_wrong_ones(make_tiny):
    check = contract()
    check.test_tiling_matches_a_probe_of_the_receptive_field(make_tiny(TINY_LAYERS))
    for wrong, says in ((ShortRadius, "change a core's features"), (LongRadius, "no pixel beyond")):
        with pytest.raises(AssertionError, match=says):
            check.test_tiling_matches_a_probe_of_the_receptive_field(make_tiny(TINY_LAYERS, cls=wrong))


def test_the_memory_check_passes_the_estimate_and_catches_one_below_the_peak(make_tiny):
    check = contract(memory_probe_size=(384, 320))
    check.test_memory_estimate_covers_a_measured_peak(make_tiny)
    with pytest.raises(AssertionError, match="MiB"):
        check.test_memory_estimate_covers_a_measured_peak(
            lambda layers, **o: make_tiny(layers, cls=TooLittleMemory, **o))


def test_chain_tiling_of_vgg19_is_the_prototxts():
    """The public helper a non-Caffe backend uses gives what the Caffe backends read from their prototxt."""
    steps = [Step(layer["name"], 3, 1, 1) if layer["type"] == "Convolution" else Step(layer["name"], 2, 2, ceil=True)
             for layer in vgg_layers(VGG19_BLOCKS) if layer["type"] != "ReLU"]
    layers = ["conv1_1", "conv4_2", "conv5_1"]
    chain = chain_tiling(steps, layers)
    caffe = prototxt_tiling(parse(vgg_prototxt(VGG19_BLOCKS)), layers)
    assert (chain.stride, chain.radius, dict(chain.strides)) == (caffe.stride, caffe.radius, dict(caffe.strides))
    assert chain.stride == 16 and chain.radius == 70
    for shape in ((100, 77), (64, 48), (33, 250)):
        assert chain.grid(shape) == caffe.grid(shape)
    assert chain_tiling(steps, ["fc6"]) is None


# -- what the core tells a backend -----------------------------------------------------------

class Recording(CaffeBackend):
    """The tiny net, recording its calls and the keywords it was made with."""

    made_with: dict = {}

    def __init__(self, layers, **options):
        Recording.made_with = dict(options)
        super().__init__(layers, **options)
        self.calls = []

    def forward(self, x, layers):
        self.calls.append("forward")
        return super().forward(x, layers)

    def features(self, x, layers):
        self.calls.append("features")
        return CaffeBackend.forward(self, x, layers)

    def backward(self, grads):
        self.calls.append("backward")
        return super().backward(grads)


def _every_forward_is_backed(calls):
    """Each forward is followed by a backward before the next forward or features."""
    for position, call in enumerate(calls):
        if call == "forward":
            following = next((c for c in calls[position + 1:]), None)
            assert following == "backward", calls


def test_forward_is_followed_by_backward_and_targets_use_features(make_tiny):
    rng = np.random.default_rng(0)
    content, style = rng.random((45, 61, 3)).astype(np.float32), rng.random((37, 50, 3)).astype(np.float32)
    backend = make_tiny(TINY_LAYERS, cls=Recording)

    def terms():
        return [WeightedLoss("content", ContentLoss(["conv2"]), 1.0), WeightedLoss("gram", GramLoss(TINY_LAYERS), 1e3)]
    x = backend.preprocess(rng.random((45, 61, 3)).astype(np.float32))
    whole = make_objective(backend, terms(), content, style)
    assert backend.calls == ["features", "features"]  # the content's and the style's targets
    backend.calls.clear()
    whole(x)
    assert backend.calls == ["forward", "backward"]
    tiles = make_tiles(backend.tiling(TINY_LAYERS), 12)
    tiled = make_tiled_objective(backend, terms(), content, style, tiles)
    assert set(backend.calls[2:]) == {"features"}
    backend.calls.clear()
    tiled(x)
    count = tiled.grid.counts[0] * tiled.grid.counts[1]
    assert backend.calls.count("features") == count - 1 and backend.calls.count("backward") == count
    _every_forward_is_backed(backend.calls)


def test_threads_reach_the_backend(tiny_net):
    prototxt, weights = tiny_net
    settings = Settings(backend="caffe", threads=3, content_layers=["conv2"], style_layers=TINY_LAYERS,
                        options={"caffe": {"prototxt": prototxt, "weights": weights}})
    make_backend(settings, [WeightedLoss("gram", GramLoss(TINY_LAYERS), 1.0)], Recording)
    assert Recording.made_with["threads"] == 3 and Recording.made_with["gpu"] == -1


# -- one flag, one declaration ------------------------------------------------------------------

WEIGHTS = Option("weights", str, None, "A PyTorch state dict (.pth).", path=True)


def test_backends_share_a_flag_only_by_sharing_its_declaration():
    shared = declared_backend_options({"caffe": CaffeBackend, "caffe-vgg19": VGG19})
    assert shared["weights"][1] == ["caffe", "caffe-vgg19"] and shared["pooling"][1] == ["caffe-vgg19"]
    torch = type("TorchVGG", (), {"options": (WEIGHTS,)})
    with pytest.raises(PluginError, match="'caffe-vgg19' and 'torch-vgg19' both declare an option 'weights'"):
        declared_backend_options({"caffe-vgg19": VGG19, "torch-vgg19": torch})
    threads = type("Threaded", (), {"options": (Option("threads", int, 2, "Threads."),)})
    with pytest.raises(PluginError, match="backend 'torch' declares an option 'threads', but --threads"):
        declared_backend_options({"torch": threads}, taken={"threads"})


def test_run_help_says_whose_flag_it_is():
    from click.testing import CliRunner

    from stylize.cli.main import cli
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Pooling: average (Gatys' choice, smoother) or max. (Backends: caffe-vgg16, caffe-vgg19.)" in text
