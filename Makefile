# greenlab -- two commands: `make lab` opens the course, `make test` runs every test.
# Both create/update .venv first (python3.11 venv + pip, exact versions from constraints.txt).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.greenlab-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 3
export TF_USE_LEGACY_KERAS := 1
export HF_HUB_OFFLINE := 1
# OMP_WAIT_POLICY is left at its default on purpose: PASSIVE (threads sleep at once) made the
# lessons' small CNNs ~3x slower on an idle 2-core machine *and* used more CPU time (16-channel
# CNN, 300 steps: 0.41 s wall / 0.81 s CPU by default, 1.15 s / 1.05 s with PASSIVE).
# No global MPLBACKEND: kernels started by `make lab` and nbval must get ipykernel's inline backend,
# or plots vanish (nbval then fails: the committed outputs have them). Only `unit` uses Agg.
export GREENLAB_CACHE ?= $(CURDIR)/build/cache
NOTEBOOKS := $(wildcard notebooks/*.ipynb) $(wildcard solutions/*.ipynb)
NBVAL := $(BIN)/python -m pytest --nbval --sanitize-with tests/sanitize.cfg -p no:randomly --nbval-cell-timeout=300 -q

.PHONY: lab test unit lint nbval test-offline browser browser-deps bench exercises exercises-check grade constraints env clean help

help:
	@echo "make lab    - create/update .venv and open the course in JupyterLab"
	@echo "make test   - create/update .venv and run every test (unit, notebooks offline, browser)"
	@echo "make bench  - execute every notebook, write bench/course.md (time, peak memory)"
	@echo "make exercises / make grade NB=exercises/02_pruning.ipynb"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[lab,dev]'
	@touch $(STAMP)

env: $(STAMP)
	$(BIN)/python -m greenlab.env

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks

lint: $(STAMP)
	$(BIN)/ruff check greenlab tests tools notebooks solutions
	$(BIN)/python tools/nbtools.py check

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -rs

# Debian's Chromium for tests/test_browser.py (Playwright drives it; Playwright's own browser
# downloads are never used). Never fails the build: it says why it skipped, and the test skips.
browser-deps:
	@if /usr/bin/chromium --version >/dev/null 2>&1; then \
	  echo "browser-deps: $$(/usr/bin/chromium --version 2>/dev/null | head -1) at /usr/bin/chromium"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "browser-deps: skipped: not root, cannot apt-get install chromium (browser test will skip)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-deps: skipped: no apt-get on this system (browser test will skip)"; \
	else \
	  echo "browser-deps: apt-get update && apt-get install -y chromium"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || echo "browser-deps: skipped: apt-get failed (offline?); browser test will skip"; \
	fi

# JupyterLab from .venv in headless Chromium: lesson 01 runs, a slider redraws (also part of `unit`).
browser: $(STAMP) browser-deps
	$(BIN)/python -m pytest tests/test_browser.py -q -rs -s

# Every notebook in notebooks/ and solutions/, outputs compared, with the network cut: a new network
# namespace (unshare -n as root, unshare -rn in a user namespace otherwise) with only loopback up, so
# kernels still talk to Jupyter; it first checks that 1.1.1.1 is unreachable. Where neither works it
# runs online and says so.
UNSHARE := $(shell if unshare -n true 2>/dev/null; then echo "unshare -n"; \
                   elif unshare -rn true 2>/dev/null; then echo "unshare -rn"; fi)
nbval: $(STAMP)
	@mkdir -p build
ifeq ($(strip $(NOTEBOOKS)),)
	@echo "nbval: no notebooks in notebooks/ or solutions/ yet"
else
	@if [ -n "$(UNSHARE)" ]; then \
	  echo "nbval: network cut with $(UNSHARE) (proves nothing downloads at run time)"; \
	  GREENLAB_LEDGER=$(CURDIR)/build/nbval-ledger.sqlite $(UNSHARE) sh -c 'ip link set lo up && \
	    if ip route get 1.1.1.1 >/dev/null 2>&1; then echo "nbval: network NOT cut" >&2; exit 1; fi && \
	    $(NBVAL) $(NOTEBOOKS)'; \
	else \
	  echo "nbval: cannot cut the network here (no unshare -n/-rn); running WITH network (offline not proven)"; \
	  GREENLAB_LEDGER=$(CURDIR)/build/nbval-ledger.sqlite $(NBVAL) $(NOTEBOOKS); \
	fi
endif

test-offline: nbval

test: lint exercises-check browser-deps unit nbval

# exercises/ is generated from solutions/ (otter assign: stubs for solutions, hidden tests removed);
# the autograder zips go to build/autograder/ (not committed). `exercises-check`: CI fails on drift.
exercises: $(STAMP)
	$(BIN)/python tools/exercises.py

exercises-check: $(STAMP)
	$(BIN)/python tools/exercises.py --check

# Grade one notebook in a fresh kernel (otter run, offline): a score table, and NB's .grade.json.
grade: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make grade NB=exercises/02_pruning.ipynb [TIMEOUT=300]"; exit 2; }
	$(BIN)/python -m greenlab.course.grade "$(NB)" $(if $(TIMEOUT),--timeout $(TIMEOUT))

bench: $(STAMP)
	$(BIN)/python tools/bench.py $(NOTEBOOKS)

constraints: $(STAMP)
	@{ head -3 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf build .pytest_cache
