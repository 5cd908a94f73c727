# Two commands set up a fresh machine: `make demo` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= out/demo

.PHONY: venv demo test test-fast bench schemas clean

$(STAMP): requirements/base.txt requirements/nodeps.txt requirements/lock.txt pyproject.toml
	@command -v ffmpeg >/dev/null || { echo "installing Debian's ffmpeg (benchmarks use the CLI)"; \
	  (apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null) || echo "warning: ffmpeg CLI not installed"; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/base.txt -c requirements/lock.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/remind-curate demo --out $(DEMO_OUT)

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv
	$(BIN)/python benchmarks/ingest.py --clips 10

schemas: venv
	$(BIN)/remind-curate schema

clean:
	rm -rf out .pytest_cache
