# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The venv is (re)installed only when pyproject.toml changes (stamp file).
PY      ?= python3
VENV    := .venv
STAMP   := $(VENV)/.installed
BIN     := $(VENV)/bin
# torch==2.13.0 is pinned here: it is the local CPU build (any other spec pulls a CUDA build of GBs).
TORCH   ?= torch==2.13.0

.PHONY: demo test test-bundled lint format install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[serve,onnx,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crackseg demo

test: $(STAMP)
	$(BIN)/ruff check crackseg tests benchmarks
	$(BIN)/ruff format --check crackseg tests benchmarks
	$(BIN)/python -m pytest

# the shipped weights in crackseg/weights (fails until they are committed; see its README.md)
test-bundled: $(STAMP)
	$(BIN)/python -m pytest -m bundled_model tests/test_bundled_model.py

lint: $(STAMP)
	$(BIN)/ruff check crackseg tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format crackseg tests benchmarks
	$(BIN)/ruff check --fix crackseg tests benchmarks

clean:
	rm -rf $(VENV) runs reports .pytest_cache .ruff_cache
