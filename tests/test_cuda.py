"""--gpu N: which pycaffe is installed, and the device checks made before Caffe touches a GPU.

The device count and the device itself come from the CUDA runtime; here a
stand-in runtime (the seam ``check_gpu``/``use_gpu`` take) gives the counts a
machine without a GPU cannot. The real runtime is asked where the CUDA build
is installed (``make setup-gpu``, ``.venv-cuda``): on this GPU-less machine it
must report no device, as one line, without Caffe aborting.
"""
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylize.backends import cuda
from stylize.backends.caffe_net import CaffeBackend
from stylize.backends.pycaffe import import_caffe
from stylize.core import ResourceError, UsageError


class StandInRuntime:
    """What ``CudaRuntime`` answers, chosen by the test; records the devices opened."""

    def __init__(self, count: int, why: str = "", busy: bool = False):
        self.count, self.why, self.busy, self.opened = count, why, busy, []

    def device_count(self):
        return self.count, self.why

    def open(self, device):
        if self.busy:
            raise ResourceError(f"GPU {device} cannot be used: all CUDA-capable devices are busy")
        self.opened.append(device)


def installed_caffe_dist() -> list[str]:
    return importlib.metadata.packages_distributions().get("caffe", [])


def test_the_build_is_told_by_the_installed_distribution():
    assert cuda.is_cuda_build() == (cuda.CUDA_DIST in installed_caffe_dist())
    assert installed_caffe_dist(), "no distribution provides the caffe package"


def test_cpu_build_refuses_any_gpu_without_asking_the_runtime():
    runtime = StandInRuntime(count=4)
    for gpu in (0, 3):
        with pytest.raises(UsageError, match=f"GPU {gpu} requested.*CPU-only.*--gpu -1"):
            cuda.check_gpu(gpu, cuda_build=False, runtime=runtime)
    cuda.check_gpu(-1, cuda_build=False, runtime=runtime)
    assert runtime.opened == []


@pytest.mark.parametrize("count, gpu, message", [
    (0, 0, r"GPU 0 requested, but this machine has no usable CUDA GPU \(no CUDA-capable device is detected\)"),
    (1, 1, r"GPU 1 requested, but this machine has 1 CUDA GPU \(0-0\); use --gpu -1"),
    (2, 5, r"GPU 5 requested, but this machine has 2 CUDA GPUs \(0-1\); use --gpu -1"),
])
def test_a_missing_device_is_a_usage_error(count, gpu, message):
    runtime = StandInRuntime(count, why="no CUDA-capable device is detected" if count == 0 else "")
    with pytest.raises(UsageError, match=message):
        cuda.check_gpu(gpu, cuda_build=True, runtime=runtime)


def test_existing_devices_pass_the_check():
    runtime = StandInRuntime(count=2)
    cuda.check_gpu(0, cuda_build=True, runtime=runtime)
    cuda.check_gpu(1, cuda_build=True, runtime=runtime)
    cuda.check_gpu(-1, cuda_build=True, runtime=runtime)


def test_a_busy_device_stops_before_caffe_is_asked():
    """The real pycaffe: had set_device or set_mode_gpu been reached, a CPU-only build would
    abort this process, a CUDA one without a GPU too."""
    caffe = import_caffe()
    runtime = StandInRuntime(count=1, busy=True)
    with pytest.raises(ResourceError, match="GPU 0 cannot be used: all CUDA-capable devices are busy"):
        cuda.use_gpu(caffe, 0, runtime=runtime)
    with pytest.raises(UsageError, match="has 1 CUDA GPU"):
        cuda.use_gpu(caffe, 1, runtime=StandInRuntime(count=1))


def test_backend_checks_the_device_before_loading(tiny_net):
    prototxt, weights = tiny_net
    with pytest.raises(UsageError, match=cuda.refusal_words()):
        CaffeBackend(["conv1"], prototxt=prototxt, weights=weights, gpu=0)
    backend = CaffeBackend(["conv1"], prototxt=prototxt, weights=weights, gpu=-1)
    features = backend.forward(backend.preprocess(np.zeros((6, 5, 3), np.float32)), ["conv1"])
    assert features["conv1"].ndim == 3


@pytest.mark.skipif(not cuda.is_cuda_build(), reason="needs the CUDA build (make setup-gpu, .venv-cuda)")
def test_cuda_build_on_a_machine_without_gpu_says_so_in_one_line(tmp_path):
    """In a fresh process, as a user would meet it: the real runtime, the real CLI."""
    count, why = cuda.CudaRuntime().device_count()
    if count:
        pytest.skip(f"this machine has {count} GPU(s)")
    assert why
    images = Path(__file__).parent.parent / "examples" / "images"
    done = subprocess.run([str(Path(sys.executable).parent / "stylize"), "run",
                           "-c", str(images / "astronaut.jpg"), "-s", str(images / "the_scream.jpg"),
                           "-o", str(tmp_path / "out.png"), "--gpu", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == UsageError.exit_code, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"stylize: error: GPU 0 requested, but this machine has no usable CUDA GPU ({why}); use --gpu -1"]
    assert not (tmp_path / "out.png").exists()
