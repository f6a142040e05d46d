# The two commands of the README: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config/aiguilleur.example.yaml
HOST ?= 127.0.0.1
PORT ?= 8000
# `make test` runs the suite in this many processes (pytest-xdist; 0: in this process alone).
TEST_WORKERS ?= 2

.PHONY: install install-embeddings run test lint format train evaluate clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# The optional `embeddings` extra (docs/model.md): sentence embeddings for the evaluation's
# baseline and for models trained with --embeddings. torch first, as a CPU build: on this
# project's machines torch==2.13.0 is the CPU build on their disk; elsewhere PyPI's default build
# bundles CUDA (several GB), so point TORCH at a CPU build (a wheel file, or torch==2.13.0+cpu
# with PyTorch's CPU index configured for pip). About 1.1 GB in the venv.
TORCH ?= torch==2.13.0
$(VENV)/.embeddings: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[embeddings,dev]"
	@touch $@

install-embeddings: $(VENV)/.embeddings

run: install
	$(BIN)/aiguilleur serve --host $(HOST) --port $(PORT) --config $(CONFIG)

test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

train: install
	$(BIN)/aiguilleur train --out app/classify/model --no-register

evaluate: install
	$(BIN)/aiguilleur evaluate

clean:
	rm -rf $(VENV) var build dist *.egg-info
