# Two commands on a fresh machine: `make run` (set up, index seeds/, serve) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: setup run index test lint browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: it takes the local CPU wheel; a plain `torch` would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

setup: $(STAMP)

index: setup
	$(BIN)/citeqa index seeds

run: index
	$(BIN)/citeqa serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup browser
	$(BIN)/ruff check index qa ui tests
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check index qa ui tests

clean:
	rm -rf .citeqa tests/artifacts .pytest_cache
