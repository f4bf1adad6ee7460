# Two commands on a fresh machine: `make run` (set up, index seeds/, serve) and `make test`.
# `make run LLM=1` answers with the local language model (Qwen2.5-Coder-1.5B) instead of extraction.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7860
LLM ?=
WHEELS ?= $(HOME)/.cache/citeqa-wheels
LLAMA := llama-cpp-python==0.3.36
LLAMA_FLAGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF

.PHONY: setup setup-llm setup-llm-large run index train distill bench test test-units lint browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned: it takes the local CPU wheel; a plain `torch` would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "citeqa: installing the Python packages into $(VENV) (about 3 minutes the first time)"
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,train]"
	touch $@

# llama.cpp is built once (about 5 minutes on 2 cores) with portable flags and the wheel kept in $(WHEELS).
$(VENV)/.installed-llm: $(VENV)/.installed
	@ls $(WHEELS)/llama_cpp_python-0.3.36-*.whl >/dev/null 2>&1 || { \
	  echo "building llama-cpp-python once (about 5 minutes)"; \
	  CMAKE_ARGS="$(LLAMA_FLAGS)" $(BIN)/pip wheel --quiet --no-deps -w $(WHEELS) "$(LLAMA)"; }
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e ".[test,train,llm]"
	touch $@

$(VENV)/.installed-llm-large: $(VENV)/.installed-llm
	$(BIN)/pip install --quiet --find-links $(WHEELS) -e ".[test,train,llm,llm-large]"
	touch $@

setup: $(VENV)/.installed $(if $(LLM),$(VENV)/.installed-llm-large)
setup-llm: $(VENV)/.installed-llm
setup-llm-large: $(VENV)/.installed-llm-large

index: setup
	@echo "citeqa: indexing seeds/ (only what changed; about 10 s the first time)"
	$(BIN)/citeqa index seeds

# Rebuilds the shipped reader (qa/reader) from ../shared/train: about 3 hours on 2 cores, most of it fine-tuning, which
# can run on a GPU instead (README: "Reproducible"; 2 minutes on one H100). `make run` never trains.
train: setup
	$(BIN)/citeqa train

# Rebuilds the shipped static embedding model (index/static, CITEQA_EMBEDDING_MODEL=static) from MiniLM: ~50 s.
distill: setup
	$(BIN)/python -m lab.distill

# The scale benchmark (not part of `make test`): a generated corpus at each size over a real `chroma run`, citeqa
# beside a dense top-1 LangChain peer; writes bench/results-$(EMBEDDING).md. With the static model the three sizes
# take about 20 minutes here; `make bench EMBEDDING=minilm SIZES="1000 10000"` measures the default model (its
# 100k row would take over an hour of indexing alone).
SIZES ?= 1000 10000 100000
EMBEDDING ?= static
bench: setup
	$(BIN)/python bench/scale.py --sizes $(SIZES) --embedding $(EMBEDDING) --out bench/results-$(EMBEDDING).md

run: index
	@echo "citeqa: starting the server (about 10 s); it prints its URL when ready, Ctrl-C stops it"
	$(if $(LLM),CITEQA_ANSWERER=local) $(BIN)/citeqa serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser of its own).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Everything; `make test-units` leaves out tests/system/ (real servers, the browser, killed processes).
test: setup-llm browser
	$(BIN)/ruff check index qa ui lab tests bench
	$(BIN)/python -m pytest -q

test-units: setup-llm
	$(BIN)/python -m pytest -q -m "not system"

lint: setup
	$(BIN)/ruff check index qa ui lab tests bench

clean:
	rm -rf .citeqa tests/artifacts .pytest_cache
