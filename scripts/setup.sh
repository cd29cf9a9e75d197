#!/usr/bin/env bash
# Set up everything stylize needs, idempotently: a virtualenv (.venv), pycaffe
# built from source (cached under $STYLIZE_HOME/wheels), stylize itself with
# its test tools, Debian's Chromium for the web app's browser test, and the
# VGG19 weights. A second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's system Python keeps venv in a separate package.
        sudo=$([ "$(id -u)" = 0 ] || echo sudo)
        $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends python3-venv python3-dev
        rm -rf "$VENV" && "$PYTHON" -m venv "$VENV"
    fi
fi

# The browser test (tests/test_serve_browser.py) drives Debian's Chromium through Debian's
# chromedriver; nothing downloads a browser at run time. apt runs only when one is missing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi

# Re-install stylize only when its metadata changed (entry points live there).
stamp="$VENV/.stylize-setup"
# PYCAFFE_FLAGS=--cuda (make setup-gpu): the CUDA build of pycaffe instead.
PYCAFFE_FLAGS=${PYCAFFE_FLAGS:-}
wanted=$( (cat setup.cfg pyproject.toml scripts/install_pycaffe*.py scripts/caffe/*; echo "$PYCAFFE_FLAGS") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$VENV/bin/python" -m pip install -q numpy
    "$VENV/bin/python" scripts/install_pycaffe.py $PYCAFFE_FLAGS
    "$VENV/bin/python" -m pip install -q -e '.[test,fast]'  # fast: --init fast's network (tested)
    scripts/forget-entry-points.sh
    echo "$wanted" > "$stamp"
fi

# --precision bf16: oneDNN from PyPI and the sgemm library Caffe binds to (seconds; nothing on a second run).
"$VENV/bin/python" scripts/build_bf16_shim.py

"$VENV/bin/stylize" models fetch vgg19
