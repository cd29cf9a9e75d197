#!/usr/bin/env bash
# Set up everything stylize needs, idempotently: a virtualenv (.venv), pycaffe
# built from source (cached under $STYLIZE_HOME/wheels), stylize itself with
# its test tools, and the VGG19 weights. A second run takes seconds.
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

# Re-install stylize only when its metadata changed (entry points live there).
stamp="$VENV/.stylize-setup"
wanted=$(cat setup.cfg pyproject.toml scripts/install_pycaffe.py scripts/caffe/* | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$VENV/bin/python" -m pip install -q numpy
    "$VENV/bin/python" scripts/install_pycaffe.py
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    scripts/forget-entry-points.sh
    echo "$wanted" > "$stamp"
fi

"$VENV/bin/stylize" models fetch vgg19
