# `make book` and `make test` each create .venv if missing, install everything, and run.
# By default everything comes from requirements/lock.txt: the exact versions, with hashes, for Linux x86-64,
# CPython 3.11 and the CPU build of torch (found on PyPI mirrors that carry it, or with
# PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu"). `make UNLOCKED=1 ...` resolves
# afresh from pyproject.toml instead, with TORCH (on a CUDA box: `make UNLOCKED=1 TORCH=torch book`).
# --no-compile: Python compiles a module's bytecode when it is first imported, so pip need not compile all of
# torch's at install time (measured here: 58 s instead of 140 s to install the lock).
PYTHON ?= python3
TORCH ?= torch==2.13.0
LOCK := requirements/lock.txt
UNLOCKED ?=
PIP_EXTRA ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := $(VENV)/.chromium
PROFILE ?= cpu

.PHONY: book test test-fast setup check-book pdf gpu-check clean lock

$(STAMP): pyproject.toml booktools/pyproject.toml Makefile $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(UNLOCKED),)
	$(BIN)/python -m pip install --quiet --no-compile $(PIP_EXTRA) --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-compile --no-deps --no-build-isolation -e . -e booktools
else
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_EXTRA) "$(TORCH)"
	$(BIN)/python -m pip install --quiet $(PIP_EXTRA) -e ".[models,book,dev,cluster]" -e booktools "$(TORCH)"
endif
	touch $(STAMP)

# Rewrite requirements/lock.txt from pyproject.toml at the versions installed in .venv (pip-tools in a
# scratch environment; needs the package index). Commit it with the pyproject change that needed it.
lock: $(STAMP)
	rm -rf .cache/lock && $(PYTHON) -m venv .cache/lock/venv && .cache/lock/venv/bin/pip install --quiet pip-tools
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^gqa' > .cache/lock/installed.txt
	.cache/lock/venv/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --extra models --extra hf --extra book --extra dev --extra cluster \
	  -c .cache/lock/installed.txt -o .cache/lock/lock.txt pyproject.toml
	$(BIN)/python requirements/finish_lock.py .cache/lock/lock.txt $(LOCK)

# The book's browser checks (tests/book/test_book.py) open pages in Debian's chromium; install it if missing.
$(CHROMIUM): | $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the book's browser checks"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	touch $@

setup: $(STAMP) $(CHROMIUM)

book: $(STAMP)
	$(BIN)/gqa book --profile $(PROFILE)

# Two workers, one test file each at a time (every build of the ci book is in tests/book/test_book.py, so one
# worker builds it, once at a time), but for two files of independent slow tests whose tests are scheduled
# one by one (tests/conftest.py).
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

# The daily subset: everything but the tests marked slow (notebook executions, book builds, the wheel).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" --durations=10

# Build the book, then check it as a reader would (links, headless Chromium) with screenshots.
check-book: $(STAMP) $(CHROMIUM)
	$(BIN)/gqa book --profile $(PROFILE) --check

# The whole book as one PDF (book/_build/pdf/book.pdf), printed by headless Chromium.
pdf: $(STAMP) $(CHROMIUM)
	$(BIN)/gqa book --profile $(PROFILE) --pdf

# On a CUDA machine (sized for one H100 or H200, under 8 minutes): the attention sweep in bf16, Table 5's
# inference row as a decode benchmark, and a training-throughput row, into data/profiles/ (gqa/gpu_check.py).
# It uses the Python it is given and installs nothing (a short GPU lease often has PyTorch and no network):
# `make gpu-check PYTHON=python3`. Commit what it writes.
gpu-check:
	PYTHONPATH=. $(PYTHON) -m gqa.gpu_check

clean:
	rm -rf book/_build
