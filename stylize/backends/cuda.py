"""Choosing a CUDA GPU for Caffe (``--gpu N``), with one-line errors instead of Caffe's aborts.

Caffe aborts the whole process when a GPU call fails: a CPU-only pycaffe on
``set_device``, a CUDA one on a device that does not exist or cannot be used
(``CUDA_CHECK``). So before Caffe touches a device stylize asks two things
itself: whether this pycaffe is the CUDA build (``make setup-gpu``), and
what the CUDA runtime, called directly through ctypes, says about the device.

The runtime is a seam: ``check_gpu`` and ``use_gpu`` take any object with the
methods of ``CudaRuntime``, so the checks are tested on machines without a GPU.
"""
from __future__ import annotations

import ctypes
import importlib.metadata
from typing import Protocol

from stylize.core import ResourceError, UsageError

from .pycaffe import import_caffe

#: The distribution ``scripts/install_pycaffe.py --cuda`` builds.
CUDA_DIST = "stylize-pycaffe-cuda"
#: The CUDA runtime that build links (CUDA 13), loaded with ``caffe``.
CUDART = "libcudart.so.13"

# cudaError_t values that mean "no GPU here" rather than "this GPU fails".
_NO_DEVICE, _NO_DRIVER = 100, 35


class Runtime(Protocol):
    """What ``check_gpu`` and ``use_gpu`` ask of the CUDA runtime (the seam the tests fill)."""

    def device_count(self) -> tuple[int, str]: ...
    def open(self, device: int) -> None: ...


def is_cuda_build() -> bool:
    """Whether the installed ``caffe`` package is the CUDA build (a CPU-only pycaffe
    cannot be asked: it aborts on the first GPU call)."""
    return CUDA_DIST in importlib.metadata.packages_distributions().get("caffe", [])


def refusal_words() -> str:
    """What the ``--gpu 0`` error says on a machine where no GPU can be used, by build
    (for tests that run under either build)."""
    return "no usable CUDA GPU" if is_cuda_build() else "CPU-only"


class CudaRuntime:
    """The CUDA runtime calls stylize needs, on the libcudart that ``caffe`` loaded."""

    def __init__(self, library: str = CUDART):
        import_caffe()  # loads libcudart through _caffe.so's rpath; ctypes then finds it by name
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as e:
            raise ResourceError(f"the CUDA runtime cannot be loaded ({e})") from None
        self.lib.cudaGetErrorString.restype = ctypes.c_char_p

    def error(self, code: int) -> str:
        return self.lib.cudaGetErrorString(code).decode(errors="replace")

    def device_count(self) -> tuple[int, str]:
        """(number of usable GPUs, why none when 0)."""
        count = ctypes.c_int(0)
        code = self.lib.cudaGetDeviceCount(ctypes.byref(count))
        if code in (_NO_DEVICE, _NO_DRIVER):
            return 0, self.error(code)
        if code:
            raise ResourceError(f"the CUDA runtime cannot count the GPUs: {self.error(code)}")
        return count.value, "" if count.value else "no CUDA GPU found"

    def open(self, device: int) -> None:
        """Make a context on ``device`` (as Caffe will), so that a busy or broken GPU is an
        error here; the calling thread's current device is left as it was."""
        previous = ctypes.c_int(0)
        self.lib.cudaGetDevice(ctypes.byref(previous))
        code = self.lib.cudaSetDevice(device) or self.lib.cudaFree(None)
        self.lib.cudaSetDevice(previous.value)
        if code:
            raise ResourceError(f"GPU {device} cannot be used: {self.error(code)}")


def check_gpu(gpu: int, *, cuda_build: bool | None = None, runtime: Runtime | None = None) -> None:
    """Raise UsageError unless ``gpu`` (-1: the CPU) names a GPU this pycaffe can run on."""
    if gpu < 0:
        return
    if not (is_cuda_build() if cuda_build is None else cuda_build):
        raise UsageError(f"GPU {gpu} requested, but this pycaffe is a CPU-only build; use --gpu -1 "
                         "(or the CUDA build: make setup-gpu)")
    count, why = (runtime or CudaRuntime()).device_count()
    if count == 0:
        raise UsageError(f"GPU {gpu} requested, but this machine has no usable CUDA GPU ({why}); "
                         "use --gpu -1")
    if gpu >= count:
        raise UsageError(f"GPU {gpu} requested, but this machine has {count} CUDA GPU"
                         f"{'s' if count > 1 else ''} (0-{count - 1}); use --gpu -1 for the CPU")


def use_gpu(caffe, gpu: int, runtime: Runtime | None = None) -> None:
    """Put Caffe on this thread onto ``gpu`` (checked first), or the CPU for -1.

    Caffe's mode and device belong to the calling thread: call this on the
    thread that builds and runs the net, before building it.
    """
    if gpu < 0:
        select(caffe, gpu)
        return
    runtime = runtime or CudaRuntime()
    check_gpu(gpu, cuda_build=True, runtime=runtime)
    runtime.open(gpu)
    select(caffe, gpu)


def select(caffe, gpu: int) -> None:
    """Put this thread's Caffe on ``gpu`` (already checked by ``use_gpu``) or the CPU: cheap,
    for each call into a net that may come from another thread than the one that built it."""
    if gpu < 0:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)  # before set_mode_gpu, as Caffe's SetDevice asks
        caffe.set_mode_gpu()
