# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The venv is (re)installed only when pyproject.toml changes (stamp file).
PY      ?= python3
VENV    := .venv
STAMP   := $(VENV)/.installed
BIN     := $(VENV)/bin
# torch==2.13.0 is pinned here: it is the local CPU build (any other spec pulls a CUDA build of GBs).
TORCH   ?= torch==2.13.0

.PHONY: demo test test-bundled lint format install clean bench peers

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[serve,onnx,heic,dev]"
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

# Peers venv for `make bench`: one newer torch (a CUDA build of ~5.5 GB, run on CPU) shared by crackseg
# and the libraries people would otherwise use (timm, segmentation-models-pytorch), so both sides are
# timed under the same torch in one process. crackseg goes in with --no-deps (pip must not swap torch),
# then its own runtime dependencies as pyproject.toml lists them, less torch.
PEERS       := .venv-peers
PEERS_STAMP := $(PEERS)/.installed
PEERS_TORCH ?= torch==2.14.1 torchvision==0.29.1

$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS)/bin/python || $(PY) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install -q --upgrade pip
	$(PEERS)/bin/python -m pip install -q $(PEERS_TORCH) timm segmentation-models-pytorch
	$(PEERS)/bin/python -m pip install -q --no-deps -e .
	$(PEERS)/bin/python -m pip install -q $$($(PEERS)/bin/python -c "import tomllib; \
		deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
		print(' '.join(d for d in deps if not d.startswith('torch')))")
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

# Ours vs peers, interleaved in one process, then the CPU options of the bundled model, A/B
# (benchmarks/results/bench.md, bench_options.md and their .json). Runs in .venv-peers once `make
# peers` has finished, else in .venv with the peers reported as not installed.
# Smoke run: make bench BENCH_ARGS=--quick OPTIONS_ARGS=--quick
BENCH_PY = $(if $(wildcard $(PEERS_STAMP)),$(PEERS)/bin/python,$(BIN)/python)

bench: $(if $(wildcard $(PEERS_STAMP)),,$(STAMP))
	$(BENCH_PY) benchmarks/bench.py $(BENCH_ARGS)
	$(BENCH_PY) benchmarks/bench_options.py $(OPTIONS_ARGS)

clean:
	rm -rf $(VENV) runs reports .pytest_cache .ruff_cache
