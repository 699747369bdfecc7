# `make book` and `make test` each create .venv if missing, install everything, and run.
# TORCH pins the CPU build that lies on this machine's disk; on a CUDA box use e.g. `make TORCH=torch book`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := $(VENV)/.chromium
PROFILE ?= cpu

.PHONY: book test test-fast setup check-book pdf gpu-check clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[models,book,dev,cluster]" "$(TORCH)"
	touch $(STAMP)

# The book's browser checks (tests/test_book.py) open pages in Debian's chromium; install it if missing.
$(CHROMIUM): | $(STAMP)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the book's browser checks"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }
	touch $@

setup: $(STAMP) $(CHROMIUM)

book: $(STAMP)
	$(BIN)/gqa book --profile $(PROFILE)

# Two workers, one test file each at a time (every build of the ci book is in tests/test_book.py, so one
# worker builds it, once at a time).
test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The daily subset: everything but the tests marked slow (notebook executions, book builds, the wheel).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow"

# Build the book, then check it as a reader would (links, headless Chromium) with screenshots.
check-book: $(STAMP) $(CHROMIUM)
	$(BIN)/gqa book --profile $(PROFILE) --check

# The whole book as one PDF (book/_build/pdf/book.pdf), printed by headless Chromium.
pdf: $(STAMP) $(CHROMIUM)
	$(BIN)/gqa book --profile $(PROFILE) --pdf

# On a CUDA machine (sized for one H200, under 8 minutes): the gpu profile's attention sweep and the
# model-level decode benchmark (the cpu study's optimum against (8, 8) at 128K), both under data/profiles/.
# Commit what it writes; chapter 2 of a `make book PROFILE=gpu` reads it. Needs a CUDA build of torch.
GPU_SLUG = $$($(BIN)/python -c 'from gqa.profiling import device_slug; print(device_slug("cuda"))')
gpu-check: $(STAMP)
	$(BIN)/python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu-check: torch sees no CUDA device (install a CUDA build: make TORCH=torch setup)")'
	timeout 360 $(BIN)/gqa profile --profile gpu --device cuda
	timeout 120 $(BIN)/gqa bench decode --profile cpu --device cuda --context 128k --steps 64 \
	  --out data/profiles/decode_$(GPU_SLUG)_cpu.json

clean:
	rm -rf book/_build
