# `make book` and `make test` each create .venv if missing, install everything, and run.
# TORCH pins the CPU build that lies on this machine's disk; on a CUDA box use e.g. `make TORCH=torch book`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= cpu

.PHONY: book test setup clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[book,dev]" "$(TORCH)"
	touch $(STAMP)

setup: $(STAMP)

book: $(STAMP)
	$(BIN)/gqa book --profile $(PROFILE)

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf book/_build
