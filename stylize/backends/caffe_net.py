"""A Caffe network as a stylize backend: forward to named blobs, backward to the input.

Caffe aborts the whole process on many errors (SIGABRT), so everything that
can be checked is checked here before a file reaches Caffe.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from stylize.core import Backend, Features, ModelError, UsageError

# ImageNet mean in BGR order, as used to train the Caffe VGG models.
IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def import_caffe():
    """Import pycaffe quietly, or explain how to get it."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe logs every layer otherwise
    try:
        import caffe
    except ImportError as e:
        raise ModelError(f"pycaffe is not installed ({e}); run `make setup` in the stylize "
                         "checkout, or scripts/install_pycaffe.py with this Python") from None
    caffe.set_mode_cpu()
    return caffe


class CaffeBackend(Backend):
    """Generic pycaffe backend; subclasses provide the network and weights.

    Images are fed as BGR, 0..255, mean subtracted. Gradients are injected at
    intermediate blobs by running backward in segments: Caffe layers overwrite
    (not add to) their bottom diffs, so after each segment the next blob's own
    loss gradient is added before continuing down.
    """

    mean_bgr: np.ndarray = IMAGENET_MEAN_BGR

    def __init__(self, layers: Sequence[str], *, prototxt: str | os.PathLike, weights: str | os.PathLike,
                 gpu: int = -1, **options):
        if gpu is not None and gpu >= 0:
            raise UsageError(f"GPU {gpu} requested, but this pycaffe is a CPU-only build; "
                             "use --gpu -1")
        for path, what in ((prototxt, "network definition"), (weights, "weights")):
            if not Path(path).is_file():
                raise ModelError(f"{path}: {what} file not found")
        caffe = import_caffe()
        self.net = caffe.Net(str(prototxt), 1, weights=str(weights))  # 1 == caffe.TEST
        self.input_blob = self.net.inputs[0]
        missing = [layer for layer in layers if layer not in self.net.blobs]
        if missing:
            available = ", ".join(b for b in self.net.blobs if b != self.input_blob)
            raise UsageError(f"layer(s) {', '.join(missing)} not in this network; available: {available}")
        self.layers = tuple(layers)
        # For each blob: the last layer that writes it (an in-place ReLU after
        # its convolution), i.e. where its value is final and its diff enters.
        self._writer = {}
        for index, name in enumerate(self.net._layer_names):
            for top in self.net.top_names[name]:
                self._writer[top] = index

    # -- image <-> network input ------------------------------------------------
    def preprocess(self, image: np.ndarray) -> np.ndarray:
        bgr = image[..., ::-1].astype(np.float32) * 255.0 - self.mean_bgr
        return np.ascontiguousarray(bgr.transpose(2, 0, 1)[np.newaxis])

    def deprocess(self, x: np.ndarray) -> np.ndarray:
        bgr = x[0].transpose(1, 2, 0) + self.mean_bgr
        return np.clip(bgr[..., ::-1] / 255.0, 0.0, 1.0)

    def image_gradient(self, grad: np.ndarray) -> np.ndarray:
        # deprocess: RGB = flip(x + mean) / 255, so the adjoint flips, transposes and scales.
        return np.ascontiguousarray(grad[..., ::-1].transpose(2, 0, 1)[np.newaxis], dtype=np.float32) / 255.0

    def input_bounds(self, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        mean = self.mean_bgr.reshape(1, 3, 1, 1)
        return (np.broadcast_to(-mean, shape).astype(np.float32),
                np.broadcast_to(255.0 - mean, shape).astype(np.float32))

    # -- network ----------------------------------------------------------------
    def _reshape(self, shape: tuple[int, ...]) -> None:
        blob = self.net.blobs[self.input_blob]
        if blob.data.shape != shape:
            blob.reshape(*shape)
            self.net.reshape()

    def forward(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        self._reshape(x.shape)
        self.net.blobs[self.input_blob].data[...] = x
        last = max(self._writer[layer] for layer in layers)
        self.net._forward(0, last)
        return {layer: self.net.blobs[layer].data[0] for layer in layers}

    def backward(self, grads: Features) -> np.ndarray:
        order = sorted(grads, key=self._writer.__getitem__, reverse=True)
        for i, layer in enumerate(order):
            diff = self.net.blobs[layer].diff[0]
            if i == 0:
                diff[...] = grads[layer]
            else:
                diff += grads[layer]
            stop = self._writer[order[i + 1]] + 1 if i + 1 < len(order) else 0
            self.net._backward(self._writer[layer], stop)
        return self.net.blobs[self.input_blob].diff.copy()
