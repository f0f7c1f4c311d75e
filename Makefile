# The two commands of the README: `make run` (install + demo) and `make test` (install + tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test bench bench-baseline clean

install: $(STAMP)

$(STAMP): pyproject.toml plugins/unet/pyproject.toml plugins/gru/pyproject.toml
	@bash scripts/install-system-deps.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[test]" -e plugins/unet -e plugins/gru
	touch $(STAMP)

run: install
	$(BIN)/python -m sepframework.demo

test: install
	$(BIN)/python -m pytest -q

# Benchmarks compare against the newest baseline saved in benchmarks/baselines/ (per platform and Python).
BENCH := $(BIN)/python -m pytest -q benchmarks --benchmark-enable --benchmark-storage=file://benchmarks/baselines

bench: install
	$(BENCH) --benchmark-compare

bench-baseline: install
	$(BENCH) --benchmark-save=baseline

clean:
	rm -rf $(VENV) separated .pytest_cache
