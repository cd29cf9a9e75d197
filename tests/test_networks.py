"""Every built-in network, the generic `caffe` backend, and prototxt checking before Caffe."""
from __future__ import annotations

import tarfile

import numpy as np
import pytest
from click.testing import CliRunner

from stylize.backends import prototxt, zoo
from stylize.backends.bvlc import NETWORKS, CaffeNet, GoogLeNet
from stylize.backends.pycaffe import import_caffe
from stylize.backends.caffe_vgg import VGG16, VGG19
from stylize.backends.vgg_architecture import vgg_prototxt
from stylize.cli.main import cli
from stylize.core import ModelError, UsageError
from stylize.core.evaluation.objective import build_losses
from stylize.core.request.settings import Settings

BACKENDS = {"caffe-vgg16": VGG16, "caffe-googlenet": GoogLeNet, "caffe-caffenet": CaffeNet}
OFFICIAL = {"bvlc_googlenet.prototxt": "models/bvlc_googlenet/deploy.prototxt",
            "bvlc_reference_caffenet.prototxt": "models/bvlc_reference_caffenet/deploy.prototxt"}


def full_network_text(backend_cls) -> str:
    if backend_cls in (VGG16, VGG19):
        return vgg_prototxt(backend_cls.blocks)
    return (NETWORKS / backend_cls.prototxt_file).read_text()


def write_random_weights(backend_cls, path, seed=0):
    """A caffemodel with official layer names and random weights, written with pycaffe."""
    text = full_network_text(backend_cls)
    deepest = prototxt.blobs(prototxt.parse(text))[-1]
    net = prototxt.build_net(prototxt.prepare(text, [deepest]))
    rng = np.random.default_rng(seed)
    for blobs in net.params.values():
        for blob in blobs:
            fan_in = max(1, int(np.prod(blob.data.shape[1:])))
            blob.data[...] = rng.normal(0, np.sqrt(2.0 / fan_in), blob.data.shape)
    net.save(str(path))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def sdist_member():
    sdist = zoo.downloads_dir() / "brocolli-caffe-9.0.2.tar.gz"
    if not sdist.is_file():
        pytest.fail(f"{sdist} missing: run `make setup` (the pycaffe build caches the Caffe sdist there)")

    def read(member: str) -> str:
        with tarfile.open(sdist) as tar:
            return tar.extractfile(f"brocolli-caffe-9.0.2/{member}").read().decode()
    return read


@pytest.mark.parametrize("shipped", sorted(OFFICIAL))
def test_shipped_prototxts_are_the_official_deploy_files(shipped, sdist_member):
    assert (NETWORKS / shipped).read_text() == sdist_member(OFFICIAL[shipped])


@pytest.mark.parametrize("backend_cls", [GoogLeNet, CaffeNet])
def test_bvlc_layer_names_and_shapes_match_the_official_network(backend_cls, sdist_member):
    """Our prepared network keeps the official names and parameter shapes (weights load by name)."""
    official = prototxt.build_net(sdist_member(OFFICIAL[backend_cls.prototxt_file]))
    layers = list(backend_cls.default_content_layers) + list(backend_cls.default_style_layers)
    ours = prototxt.build_net(prototxt.prepare(full_network_text(backend_cls), layers))
    assert len(ours.params) >= 5
    for name, blobs in ours.params.items():
        assert [b.data.shape for b in blobs] == [b.data.shape for b in official.params[name]], name


def test_vgg_layer_names_are_the_official_ones(vgg19_weights):
    caffe_pb2 = import_caffe().proto.caffe_pb2
    model = caffe_pb2.NetParameter()
    with open(vgg19_weights, "rb") as f:
        model.ParseFromString(f.read())
    official = {layer.name for layer in model.layer}
    ours = {line.split('"')[1] for line in vgg_prototxt(VGG19.blocks).splitlines()
            if 'type: "Convolution"' in line}
    assert ours == official
    vgg16 = {line.split('"')[1] for line in vgg_prototxt(VGG16.blocks).splitlines()
             if 'type: "Convolution"' in line}
    assert len(vgg16) == 13 and vgg16 < ours


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_runs_stylize_end_to_end(name, home, tmp_path):
    backend_cls = BACKENDS[name]
    zoo.models_dir().mkdir(parents=True)
    write_random_weights(backend_cls, zoo.weights_path(backend_cls.model))
    from PIL import Image
    rng = np.random.default_rng(1)
    for image in ("c.png", "s.png"):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / image)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["run", "-b", name, "-c", str(tmp_path / "c.png"), "-s",
                                      str(tmp_path / "s.png"), "-o", str(out), "-l", "80", "-n", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (80, 60)


def test_googlenet_content_layers_are_weighted_as_the_reference():
    losses = {t.name: t.loss for t in build_losses(Settings(backend="caffe-googlenet"), GoogLeNet)}
    assert losses["content"].layer_weights == pytest.approx({"conv2/3x3": 2e-4, "inception_3a/output": 1 - 2e-4})
    assert len(losses["gram"].layers) == 5
    assert list(losses["gram"].layer_weights.values()) == pytest.approx([0.2] * 5)


def test_prepare_keeps_only_what_the_layers_depend_on():
    text = (NETWORKS / "bvlc_googlenet.prototxt").read_text()
    cut = prototxt.prepare(text, ["inception_3a/output"])
    assert "inception_3b" not in cut and "loss3" not in cut and "prob" not in cut
    assert 'input: "data"' in cut and "force_backward: true" in cut
    net = prototxt.parse(cut)
    assert all(p.lr_mult == 0 for layer in net.layer for p in layer.param)
    assert sum(len(layer.param) for layer in net.layer if layer.type == "Convolution") > 0
    # Unfrozen (for benchmarks against stock Caffe): the same cut, every parameter learnable.
    unfrozen = prototxt.parse(prototxt.prepare(text, ["inception_3a/output"], frozen=False))
    assert [layer.name for layer in unfrozen.layer] == [layer.name for layer in net.layer]
    assert not any(layer.param for layer in unfrozen.layer)


def test_bvlc_backends_take_the_declared_options(tmp_path):
    """The options of any Caffe model, by their declared names, each at its default but the weights."""
    from stylize.backends.caffe_net import CaffeBackend
    assert CaffeNet.options == GoogLeNet.options == CaffeBackend.options
    weights = write_random_weights(CaffeNet, tmp_path / "caffenet.caffemodel")
    given = {option.name: option.default for option in CaffeNet.options} | {"weights": str(weights)}
    backend = CaffeNet(["conv1", "conv2"], **given)
    assert backend.estimate_flops((227, 227)) == backend.costs_at((227, 227)).flops > 0


@pytest.mark.parametrize("bad, message", [
    ('name: "x" input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
     'layer { name: "p" type: "Pooling" bottom: "data" top: "p" pooling_param { round_mode: CEIL } }',
     "not a valid Caffe network definition"),
    ('name: "x" input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n'
     'layer { name: "s" type: "Swish" bottom: "data" top: "s" }', "Swish.*not in this Caffe build"),
    ('name: "x" layers { name: "c" type: CONVOLUTION }', "V1"),
    ('name: "x" layer { name: "c" type: "ReLU" bottom: "a" top: "b" }', "no input blob"),
])
def test_bad_prototxts_are_caught_before_caffe(bad, message):
    with pytest.raises(ModelError, match=message):
        prototxt.prepare(bad, ["b"])


def test_generic_caffe_backend_with_your_own_model(tiny_net, tmp_path):
    """--backend caffe runs any model: files or a model folder, layers named by the user."""
    from PIL import Image
    prototxt_file, weights_file = tiny_net
    rng = np.random.default_rng(2)
    for image in ("c.png", "s.png"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / image)
    base = ["run", "-b", "caffe", "-c", str(tmp_path / "c.png"), "-s", str(tmp_path / "s.png"),
            "-l", "24", "-n", "2", "-q"]
    runner = CliRunner()
    ok = runner.invoke(cli, base + ["-o", str(tmp_path / "a.png"), "--prototxt", prototxt_file,
                                    "--weights", weights_file, "--content-layers", "conv2",
                                    "--style-layers", "conv1,conv2"])
    assert ok.exit_code == 0, ok.output
    folder = tmp_path / "model"
    folder.mkdir()
    for source in (prototxt_file, weights_file):
        (folder / source.rsplit("/", 1)[1]).write_bytes(open(source, "rb").read())
    ok = runner.invoke(cli, base + ["-o", str(tmp_path / "b.png"), "--model-dir", str(folder),
                                    "--content-layers", "conv2", "--style-layers", "conv1"])
    assert ok.exit_code == 0, ok.output
    no_layers = runner.invoke(cli, base + ["-o", str(tmp_path / "x.png"), "--model-dir", str(folder)])
    assert no_layers.exit_code == UsageError.exit_code
    assert "no default content layers" in no_layers.stderr
    wrong = runner.invoke(cli, base + ["-o", str(tmp_path / "d.png"), "--model-dir", str(folder),
                                       "--content-layers", "fc7", "--style-layers", "conv1"])
    assert wrong.exit_code == UsageError.exit_code
    assert "fc7" in wrong.stderr and "available: conv1, pool1, conv2" in wrong.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "d.png").exists()


def test_weights_that_do_not_fit_are_refused_before_caffe(tiny_net, tmp_path, home):
    """Caffe would abort on these (SIGABRT) or silently keep random weights."""
    from stylize.backends.caffe_net import CaffeBackend
    prototxt_file, weights_file = tiny_net
    data = open(weights_file, "rb").read()
    cases = {"truncated": data[:len(data) // 2], "garbage": b"this is not a caffemodel" * 10}
    for name, content in cases.items():
        path = tmp_path / f"{name}.caffemodel"
        path.write_bytes(content)
        with pytest.raises(ModelError, match="not a readable Caffe model"):
            CaffeBackend(["conv2"], prototxt=prototxt_file, weights=path)
    other = write_random_weights(CaffeNet, tmp_path / "caffenet.caffemodel")
    with pytest.raises(ModelError, match="another network"):
        CaffeBackend(["conv2"], prototxt=prototxt_file, weights=other)
    with pytest.raises(ModelError, match="another network"):
        VGG16(["conv1_1"], weights=other)


@pytest.mark.parametrize("name, smallest", [("caffenet", 23), ("googlenet", 31)])
def test_smallest_input_is_where_caffe_stops_aborting(name, smallest, tmp_path):
    """Below the computed side Caffe aborts (or leaves a layer empty); at it, every layer has a position."""
    import subprocess
    import sys

    from stylize.backends import bvlc, prototxt, sizes
    cls = {"caffenet": bvlc.CaffeNet, "googlenet": bvlc.GoogLeNet}[name]
    layers = list(dict.fromkeys([*cls.default_content_layers, *cls.default_style_layers]))
    text = prototxt.prepare(cls.network(cls, None)[0], layers)
    assert sizes.minimum_side(prototxt.parse(text)) == smallest
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    probe = ("import caffe, sys; n = caffe.Net(sys.argv[1], 1); s = int(sys.argv[2]); "
             "n.blobs['data'].reshape(1, 3, s, s); n.reshape(); n.forward(); "
             "print(min(b.data.shape[2] for b in n.blobs.values()))")
    for side, fits in ((smallest - 1, False), (smallest, True)):
        run = subprocess.run([sys.executable, "-c", probe, str(path), str(side)], capture_output=True, text=True)
        smallest_layer = int(run.stdout) if run.returncode == 0 else 0
        assert (smallest_layer >= 1) == fits, (side, run.returncode, run.stdout)
