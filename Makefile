# The two commands of the README: `make demo` and `make test`.
# Both set everything up first (idempotent, seconds on a second run).

VENV ?= .venv
DEMO_OUT = out/astronaut-the_scream.png
EXAMPLE = examples/stylize-example-plugin
EXAMPLE_STAMP = $(VENV)/.stylize-example-plugin
EXAMPLE_FILES = $(shell find $(EXAMPLE)/setup.cfg $(EXAMPLE)/pyproject.toml $(EXAMPLE)/README.md $(EXAMPLE)/src \
                  \( -name '*.egg-info' -o -name __pycache__ \) -prune -o -type f -print)

.PHONY: setup setup-gpu demo test bench bench-quality-setup

setup:
	scripts/setup.sh

demo: setup $(DEMO_OUT)
	@echo "demo image: $(DEMO_OUT)"

$(DEMO_OUT): examples/images/astronaut.jpg examples/images/the_scream.jpg | setup
	$(VENV)/bin/stylize run -c examples/images/astronaut.jpg -s examples/images/the_scream.jpg \
	    -o $@ --length 384 --iterations 100 --force

test: setup $(EXAMPLE_STAMP)
	$(VENV)/bin/python -m pytest -ra tests $(EXAMPLE)/tests

# The example third-party plugin package, installed as users install plugins
# (not editable: stylize must find it through installed entry-point metadata).
# Reinstalled only when its package files change; build/ is cleared first so
# that a deleted module cannot linger in the wheel.
ifeq ($(wildcard $(VENV)/lib/python*/site-packages/stylize_example_plugin-*.dist-info),)
.PHONY: $(EXAMPLE_STAMP)  # not installed (any more): install whatever the stamp says
endif
$(EXAMPLE_STAMP): $(EXAMPLE_FILES) | setup
	rm -rf $(EXAMPLE)/build
	$(VENV)/bin/python -m pip install -q --no-deps --force-reinstall $(EXAMPLE)
	scripts/forget-entry-points.sh
	touch $@

bench: setup
	$(VENV)/bin/python bench/speed.py

# bench/quality.py's scorers and plots (the `quality` extra: CPU PyTorch, EfficientNet-Lite0, matplotlib)
# into the same virtualenv; installed again only when setup.cfg changes.
QUALITY_STAMP = $(VENV)/.stylize-quality
bench-quality-setup: setup $(QUALITY_STAMP)
$(QUALITY_STAMP): setup.cfg | setup
	$(VENV)/bin/python -m pip install -q -e '.[test,quality]'
	scripts/forget-entry-points.sh
	touch $@

# The CUDA build of pycaffe (README: GPU (CUDA)) in its own virtualenv, on
# Python 3.12 (what GPU machines with PyTorch run); never part of setup or test.
CUDA_VENV ?= .venv-cuda
CUDA_PYTHON ?= $(firstword $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null) \
                          $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12))
setup-gpu:
	@test -n "$(CUDA_PYTHON)" || { echo "setup-gpu: no python3.12 found; give CUDA_PYTHON=/path/to/python3.12"; exit 1; }
	VENV=$(CUDA_VENV) PYTHON=$(CUDA_PYTHON) PYCAFFE_FLAGS=--cuda scripts/setup.sh
