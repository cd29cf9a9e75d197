"""A Caffe network as a stylize backend: forward to named blobs, backward to the input.

Caffe aborts the whole process on many errors (SIGABRT), so everything that
can be checked is checked here before a file reaches Caffe.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from stylize.core import (Backend, Features, ImageError, ModelError, Option, Tiling, UsageError,
                          resident_bytes)

from . import bf16, costs, cuda, sizes, verify
from .prototxt import build_net, parse, prepare
from .pycaffe import import_caffe

# ImageNet mean in BGR order, as used to train the Caffe VGG models.
IMAGENET_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)

#: Feature-sized float32 arrays the objective holds per layer read, at its
#: peak (during backward): the layer's loss gradient (the objective weights
#: and sums them in place), plus the losses' temporaries and targets and the
#: allocator's slack. Measured 1.1-1.2 with tracemalloc and 1.25 in peak RSS
#: (bench/speed.py, VGG19, content + gram, 256-1024 px); 1.5 keeps a margin.
OBJECTIVE_COPIES = 1.5

#: The files of a Caffe model: every Caffe backend takes them, the built-in
#: ones to replace their own network or weights.
FILE_OPTIONS = (
    Option("prototxt", str, None, "Your own Caffe network definition (deploy prototxt) for the backend; "
           "with --backend caffe any model works, layers from --content/--style-layers.", path=True),
    Option("weights", str, None, "Your own .caffemodel for the backend, e.g. the full-precision "
           "VGG_ILSVRC_19_layers.caffemodel with --backend caffe-vgg19.", path=True),
    Option("model_dir", str, None, "A folder with one deploy prototxt and one .caffemodel "
           "(instead of the two above).", path=True),
)

#: Arithmetic of the convolutions' GEMMs on the CPU (stylize.backends.bf16).
PRECISION = Option("precision", str, "auto", "Arithmetic of Caffe's convolution products on the CPU: auto "
                   f"(the default): bf16 for images of at least {bf16.AUTO_MIN_PIXELS} pixels (362x362) where the "
                   "CPU has it and stylize's bf16 library is built, where it is faster at the same scores, fp32 "
                   "otherwise; fp32: always exact float32; bf16 (bfloat16 inputs, float32 sums; needs AVX512_BF16 "
                   "or AMX) at every size (README \"Performance\").",
                   choices=("auto", "fp32", "bf16"))


class CaffeBackend(Backend):
    """Any Caffe model: a deploy prototxt and its caffemodel (``--backend caffe``).

    Options ``prototxt`` and ``weights`` name the files, or ``model_dir`` a
    folder holding one ``*.prototxt`` and one ``*.caffemodel``. Such a model
    has no default layers: choose them with --content-layers/--style-layers.
    Subclasses supply a built-in network and weights instead.

    Images are fed as BGR, 0..255, mean subtracted. Gradients are injected at
    intermediate blobs by running backward in segments: Caffe layers overwrite
    (not add to) their bottom diffs, so after each segment the next blob's own
    loss gradient is added before continuing down.
    """

    mean_bgr: np.ndarray = IMAGENET_MEAN_BGR
    options = (*FILE_OPTIONS, PRECISION)

    def __init__(self, layers: Sequence[str], *, prototxt: str | os.PathLike | None = None,
                 weights: str | os.PathLike | None = None, model_dir: str | os.PathLike | None = None,
                 gpu: int = -1, frozen: bool = True, precision: str = "auto", **options):
        """``frozen=False`` (not an option of a run) leaves the parameters learnable, so that
        backward also computes weight gradients, as stock Caffe does: for benchmarks that
        measure what freezing saves."""
        gpu = -1 if gpu is None else gpu
        self.check_device(gpu)
        if precision == "bf16" and gpu >= 0:
            raise UsageError("--precision bf16 is for the CPU; drop it with --gpu")
        bf16.check(precision)
        self.precision = "fp32" if gpu >= 0 else precision
        if self.precision == "auto":
            bf16.resolve("auto", bf16.AUTO_MIN_PIXELS)  # load the library now, before pycaffe is imported
        if model_dir is not None:
            prototxt, weights = _files_in(Path(model_dir), prototxt, weights)
        text, source = self.network(prototxt, **options)
        weights = Path(weights) if weights is not None else self.default_weights()
        if not weights.is_file():
            raise ModelError(f"{weights}: weights file not found")
        self._prepared = prepare(text, layers, source, frozen=frozen)
        self._gpu, self._caffe = gpu, import_caffe()
        cuda.use_gpu(self._caffe, gpu)  # this thread's Caffe: mode and device, before the net
        self.net = build_net(self._prepared)
        verify.check_weights_fit({name: [b.data.shape for b in blobs]
                                  for name, blobs in self.net.params.items()}, weights)
        self.net.copy_from(str(weights))
        self.input_blob = self.net.inputs[0]
        self.layers = tuple(layers)
        # The layer parameters that shapes do not tell (kernels, strides): for costs and sizes.
        self._proto = parse(self._prepared)
        self._costs: dict[tuple[int, ...], costs.NetCosts] = {}
        # Shapes at the prototxt's own input size (nothing allocated yet): how
        # arrays grow with the image, to refuse sizes Caffe would abort on.
        self._reference = costs.net_costs(self.net, self._proto)
        # What the process holds with the network loaded: interpreter, libraries, weights, images.
        self._baseline_bytes = resident_bytes()
        # For each blob: the last layer that writes it (an in-place ReLU after
        # its convolution), i.e. where its value is final and its diff enters.
        self._writer = {}
        for index, name in enumerate(self.net._layer_names):
            for top in self.net.top_names[name]:
                self._writer[top] = index

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """A model folder supplies only the file not named; naming both leaves it unused."""
        if all(options.get(key) is not None for key in ("model_dir", "prototxt", "weights")):
            raise UsageError("--model-dir is not used when both --prototxt and --weights are given; drop one "
                             "of the three (--model-dir supplies only the file you leave out)")
        bf16.check(options.get("precision") or PRECISION.default)

    @classmethod
    def check_device(cls, gpu: int) -> None:
        cuda.check_gpu(gpu)

    def network(self, prototxt: str | os.PathLike | None, **options) -> tuple[str, str]:
        """(prototxt text, where it came from). Built-in backends override this."""
        if prototxt is None:
            raise UsageError("this backend needs a network: give --prototxt and --weights, or --model-dir")
        path = Path(prototxt)
        if not path.is_file():
            raise ModelError(f"{path}: network definition file not found")
        return path.read_text(errors="replace"), str(path)

    def default_weights(self) -> Path:
        raise UsageError("this backend needs weights: give --weights (a .caffemodel) or --model-dir")

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
        mean = self.mean_bgr.reshape(1, 3, 1, 1).astype(np.float32)
        # Per-channel constants, broadcast (read-only views): two image-sized arrays fewer for a run's whole level.
        return np.broadcast_to(-mean, shape), np.broadcast_to(np.float32(255.0) - mean, shape)

    # -- network ----------------------------------------------------------------
    def _reshape(self, shape: tuple[int, ...]) -> None:
        blob = self.net.blobs[self.input_blob]
        if blob.data.shape != shape:
            self.check_size(shape[-2:])
            blob.reshape(*shape)
            self.net.reshape()

    def _precision(self) -> str:
        """fp32 or bf16 for an evaluation at the input's current size (``auto`` decides by size)."""
        return bf16.resolve(self.precision, int(np.prod(self.net.blobs[self.input_blob].data.shape[-2:])))

    def forward(self, x: np.ndarray, layers: Sequence[str]) -> dict[str, np.ndarray]:
        cuda.select(self._caffe, self._gpu)  # Caffe's mode is per thread: a job may run on another
        self._reshape(x.shape)
        bf16.use(self._precision())  # per call: nets of either precision may share the process
        self.net.blobs[self.input_blob].data[...] = x
        last = max(self._writer[layer] for layer in layers)
        self.net._forward(0, last)
        return {layer: self.net.blobs[layer].data[0] for layer in layers}

    def backward(self, grads: Features) -> np.ndarray:
        cuda.select(self._caffe, self._gpu)
        bf16.use(self._precision())
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

    # -- costs --------------------------------------------------------------------
    def costs_at(self, shape: Sequence[int]) -> costs.NetCosts:
        """FLOPs and Caffe memory of one forward + backward on an image of ``shape`` (H, W).

        Read from a throwaway copy of the network reshaped to that size (its
        activations are never allocated), so this network keeps its buffers.
        """
        key = tuple(int(d) for d in shape[:2])
        if key not in self._costs:
            self.check_size(key)
            channels = self.net.blobs[self.input_blob].shape[1]
            self._costs[key] = costs.net_costs(build_net(self._prepared, (1, channels, *key)), self._proto)
        return self._costs[key]

    def arithmetic(self, shape: Sequence[int]) -> str:
        precision = bf16.resolve(self.precision, int(np.prod(shape[-2:])))
        return "" if precision == "fp32" else precision

    def estimate_flops(self, shape: Sequence[int]) -> int | None:
        return self.costs_at(shape).flops

    def tiling(self, layers: Sequence[str]) -> Tiling | None:
        """Strides and receptive fields of ``layers`` from the prototxt (``sizes.receptive_fields``)."""
        tiling = sizes.tiling(self._proto, layers)
        return tiling and dataclasses.replace(tiling, channels={name: self.net.blobs[name].channels for name in layers})

    def smallest_input(self) -> tuple[int, int]:
        if not hasattr(self, "_smallest"):
            self._smallest = sizes.minimum_side(self._proto, "h"), sizes.minimum_side(self._proto, "w")
        return self._smallest

    def check_size(self, shape: Sequence[int]) -> None:
        """Refuse an image size (H, W) that would make Caffe abort the process.

        Too small: some layer would have no rows or columns (ImageError).
        Too large: one of Caffe's arrays would pass 2^31 values (ResourceError).
        """
        (low_h, low_w), (h, w) = self.smallest_input(), (int(shape[0]), int(shape[1]))
        if h < low_h or w < low_w:
            raise ImageError(f"a {w}x{h} px image is too small for this network: it needs at least "
                             f"{low_w}x{low_h}; use a larger --length or fewer --scales")
        sizes.check_caffe_limit(self._reference, shape)

    def estimate_peak_bytes(self, shape: Sequence[int]) -> int | None:
        """What the process holds now, plus Caffe's activations, diffs and buffers at ``shape``,
        plus the objective's feature-sized arrays (``OBJECTIVE_COPIES`` per layer read)."""
        if self._baseline_bytes is None:
            return None
        cost = self.costs_at(shape)
        features = sum(cost.blob_bytes[layer] for layer in self.layers)
        return self._baseline_bytes + cost.activation_bytes() + int(OBJECTIVE_COPIES * features)


def _files_in(folder: Path, prototxt, weights) -> tuple[Path, Path]:
    """The prototxt and caffemodel of a model folder (explicit paths win)."""
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")

    def only(pattern: str, what: str) -> Path:
        found = sorted(folder.glob(pattern))
        deploy = [p for p in found if "deploy" in p.name]
        if len(found) == 1 or len(deploy) == 1:
            return (deploy or found)[0]
        detail = "none" if not found else ", ".join(p.name for p in found)
        raise ModelError(f"{folder}: expected one {what} ({pattern}), found {detail}; "
                         "name it with --prototxt/--weights")

    return (Path(prototxt) if prototxt else only("*.prototxt", "network definition"),
            Path(weights) if weights else only("*.caffemodel", "weights file"))
