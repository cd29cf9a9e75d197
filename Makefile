# The two commands of the README: `make demo` and `make test`.
# Both set up what they need first (idempotent, seconds on a second run):
# `make demo` only what the demo needs, `make test` also the test tools.

VENV ?= .venv
DEMO_CONTENT = examples/images/astronaut.jpg
DEMO_STYLE = examples/images/the_scream.jpg
DEMO_OUT = out/astronaut-the_scream.png
DEMO_SHEET = out/astronaut-the_scream-side-by-side.png
EXAMPLE = examples/stylize-example-plugin
EXAMPLE_STAMP = $(VENV)/.stylize-example-plugin
EXAMPLE_FILES = $(shell find $(EXAMPLE)/setup.cfg $(EXAMPLE)/pyproject.toml $(EXAMPLE)/README.md $(EXAMPLE)/src \
                  \( -name '*.egg-info' -o -name __pycache__ \) -prune -o -type f -print)

.PHONY: setup test-setup setup-gpu demo test bench bench-quality-setup

setup:
	scripts/setup.sh

test-setup:
	scripts/setup.sh --test

# Says where the picture is and how long it all took (from nothing: the Caffe build too).
demo:
	@start=$$(date +%s); $(MAKE) --no-print-directory setup $(DEMO_SHEET) || exit; \
	  s=$$(( $$(date +%s) - start )); \
	  echo "demo: $(DEMO_OUT), beside its photo and painting in $(DEMO_SHEET); make demo took $$((s / 60)) min $$((s % 60)) s"

$(DEMO_OUT): $(DEMO_CONTENT) $(DEMO_STYLE) | setup
	$(VENV)/bin/stylize run -c $(DEMO_CONTENT) -s $(DEMO_STYLE) -o $@ --length 384 --iterations 100 --force

$(DEMO_SHEET): $(DEMO_OUT) scripts/side_by_side.py
	$(VENV)/bin/python scripts/side_by_side.py $(DEMO_CONTENT) $(DEMO_STYLE) $(DEMO_OUT) -o $@

test: test-setup $(EXAMPLE_STAMP)
	$(VENV)/bin/python -m pytest -ra tests $(EXAMPLE)/tests

# The example third-party plugin package, installed as users install plugins
# (not editable: stylize must find it through installed entry-point metadata).
# Reinstalled only when its package files change; build/ is cleared first so
# that a deleted module cannot linger in the wheel.
ifeq ($(wildcard $(VENV)/lib/python*/site-packages/stylize_example_plugin-*.dist-info),)
.PHONY: $(EXAMPLE_STAMP)  # not installed (any more): install whatever the stamp says
endif
$(EXAMPLE_STAMP): $(EXAMPLE_FILES) | test-setup
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
