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
export MPLBACKEND := Agg
export GREENLAB_CACHE ?= $(CURDIR)/build/cache
NOTEBOOKS := $(wildcard notebooks/*.ipynb) $(wildcard solutions/*.ipynb)
NBVAL := $(BIN)/python -m pytest --nbval --sanitize-with tests/sanitize.cfg -p no:randomly --nbval-cell-timeout=300 -q

.PHONY: lab test unit lint nbval test-offline bench exercises grade constraints env clean help

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
	$(BIN)/python -m pytest tests -q

# Every notebook in notebooks/ and solutions/, outputs compared, with the network cut (unshare -n,
# loopback up so the kernel can talk to Jupyter). Without unshare it runs online and says so.
nbval: $(STAMP)
	@mkdir -p build
	@if unshare -n true 2>/dev/null; then \
	  echo "nbval: network cut with unshare -n (proves nothing downloads at run time)"; \
	  GREENLAB_LEDGER=$(CURDIR)/build/nbval-ledger.sqlite unshare -n sh -c 'ip link set lo up && $(NBVAL) $(NOTEBOOKS)'; \
	else \
	  echo "nbval: unshare -n not permitted here; running WITH network (offline not proven)"; \
	  GREENLAB_LEDGER=$(CURDIR)/build/nbval-ledger.sqlite $(NBVAL) $(NOTEBOOKS); \
	fi

test-offline: nbval

test: lint unit nbval

bench: $(STAMP)
	$(BIN)/python tools/bench.py $(NOTEBOOKS)

constraints: $(STAMP)
	@{ head -3 constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//'; } > constraints.new
	mv constraints.new constraints.txt

clean:
	rm -rf build .pytest_cache
