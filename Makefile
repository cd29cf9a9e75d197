# The two commands of the README: `make demo` and `make test`.
# Both set everything up first (idempotent, seconds on a second run).

VENV ?= .venv
DEMO_OUT = out/astronaut-the_scream.png

.PHONY: setup demo test bench

setup:
	scripts/setup.sh

demo: setup $(DEMO_OUT)
	@echo "demo image: $(DEMO_OUT)"

$(DEMO_OUT): examples/images/astronaut.jpg examples/images/the_scream.jpg | setup
	$(VENV)/bin/stylize run -c examples/images/astronaut.jpg -s examples/images/the_scream.jpg \
	    -o $@ --length 384 --iterations 100

test: setup
	$(VENV)/bin/python -m pytest -ra

bench: setup
	$(VENV)/bin/python bench/speed.py
