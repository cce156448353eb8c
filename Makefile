# greenlab -- two commands: `make lab` opens the course, `make test` runs every test.
# Both create/update .venv first (python3.11 venv + pinned pip, exact versions from constraints.txt,
# the lock `make lock` compiles from pyproject's ranges). `make quick`: the fast unit tests.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The tools the Makefile runs, pinned: pip installs .venv, uv compiles the lock (make lock only).
PIP_VERSION := 26.3
UV_VERSION := 0.13.8
# The stamp names the pip pin, so a new pin reinstalls; pyproject.toml or the lock changing does too.
STAMP := $(VENV)/.greenlab-installed-pip$(PIP_VERSION)
# Linux: torch's CPU wheels. The default index serves Linux the multi-GB CUDA build; the CPU index
# is used only when it answers within TORCH_INDEX_TIMEOUT_S, else the default index (CI here).
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX_TIMEOUT_S ?= 4
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
NBVAL := $(BIN)/python -m pytest --nbval --nbval-sanitize-with tests/sanitize.cfg -p no:randomly --nbval-cell-timeout=300 -q

.PHONY: lab test unit quick lint nbval test-offline browser browser-deps bench exercises exercises-check grade grade-deps lock torch-index env clean help

help:
	@echo "make lab    - create/update .venv and open the course in JupyterLab"
	@echo "make test   - create/update .venv and run every test (unit, notebooks offline, browser)"
	@echo "make quick  - the unit tests without slow, browser, otter and tf ones (under a minute)"
	@echo "make lock   - recompile constraints.txt from pyproject.toml (keeps today's pins if it can)"
	@echo "make bench  - time the reference workload R, execute every notebook, write bench/course.md (s, R, peak memory) and bench/meters.md"
	@echo "make exercises / make grade NB=exercises/02_pruning.ipynb"

# Prints pip's option for torch's CPU index when it answers in time, else nothing (and says why).
# `timeout` bounds DNS too, which urlopen's own timeout does not.
TORCH_INDEX = if [ "$$(uname -s)" != Linux ]; then :; \
  elif timeout $(TORCH_INDEX_TIMEOUT_S) $(PYTHON) -c 'import sys, urllib.request; \
      urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))' \
      "$(TORCH_CPU_INDEX)" "$(TORCH_INDEX_TIMEOUT_S)" >/dev/null 2>&1; then \
    echo "torch: CPU wheels from $(TORCH_CPU_INDEX)" >&2; echo "--extra-index-url $(TORCH_CPU_INDEX)"; \
  else echo "torch: $(TORCH_CPU_INDEX) did not answer within $(TORCH_INDEX_TIMEOUT_S) s: default index" >&2; fi

torch-index:
	@$(TORCH_INDEX)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==$(PIP_VERSION)
	@echo "$(BIN)/python -m pip install -q [torch index] -c constraints.txt -e '.[lab,dev]'"
	@$(BIN)/python -m pip install -q $$($(TORCH_INDEX)) -c constraints.txt -e '.[lab,dev]'
	@rm -f $(VENV)/.greenlab-installed*
	@touch $(STAMP)

env: $(STAMP)
	$(BIN)/python -m greenlab.env

# As root (a container, a cloud VM) JupyterLab refuses to start without --allow-root.
# LAB_ARGS passes more options, e.g. make lab LAB_ARGS="--no-browser --port 8899".
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check greenlab tests tools notebooks solutions
	$(BIN)/python tools/nbtools.py check

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -rs

# The development loop: unit tests minus those marked slow, browser, otter or tf (tests/conftest.py).
QUICK := not slow and not browser and not otter and not tf
quick: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -m "$(QUICK)"

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

# JupyterLab from .venv in headless Chromium on a small fixture notebook: a kernel starts, cells run,
# a plot renders, a slider redraws it, no error output (also part of `unit`; lessons are nbval's job).
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
	@# the zoo's reference model is trained once into GREENLAB_CACHE here, not inside a notebook cell
	@# (nbval's per-cell timeout would then time a training run on a fresh clone)
	$(BIN)/python -c "from greenlab import zoo; print('zoo:', zoo.card('cnn128').accuracy)"
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

test: lint exercises-check browser-deps grade-deps unit nbval

# exercises/ is generated from solutions/ (otter assign: stubs for solutions, hidden tests removed);
# the autograder zips go to build/autograder/ (not committed). `exercises-check`: CI fails on drift.
exercises: $(STAMP)
	$(BIN)/python tools/exercises.py

exercises-check: $(STAMP)
	$(BIN)/python tools/exercises.py --check

# Debian's bubblewrap, the sandbox `make grade` runs a submission in (README: Grading threat
# model). Never fails the build: it says why it skipped, and grading then warns it is uncontained.
grade-deps:
	@if command -v bwrap >/dev/null 2>&1; then \
	  echo "grade-deps: $$(bwrap --version 2>/dev/null | head -1) at $$(command -v bwrap)"; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "grade-deps: skipped: not root, cannot apt-get install bubblewrap (grading will warn it is not contained; ask an admin: apt-get install bubblewrap)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "grade-deps: skipped: no apt-get on this system (install bubblewrap with your package manager)"; \
	else \
	  echo "grade-deps: apt-get update && apt-get install -y bubblewrap"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
	    || echo "grade-deps: skipped: apt-get failed (offline?); grading will warn it is not contained"; \
	fi

# Grade one notebook in a fresh kernel (otter run, offline, contained by bubblewrap): a score
# table, and NB's .grade.json. LESSON=02 grades it as that lesson; SANDBOX=require refuses to run
# it uncontained.
grade: $(STAMP) grade-deps
	@test -n "$(NB)" || { echo "usage: make grade NB=exercises/02_pruning.ipynb [TIMEOUT=300] [LESSON=02] [SANDBOX=require]"; exit 2; }
	$(BIN)/python -m greenlab.course.grade "$(NB)" $(if $(TIMEOUT),--timeout $(TIMEOUT)) $(if $(LESSON),--lesson $(LESSON)) $(if $(SANDBOX),--sandbox $(SANDBOX))

# Times the reference workload R first (fresh process), then every notebook in a fresh kernel: seconds,
# multiples of R and peak RSS against the budgets -> bench/course.md; greenlab's meter beside
# codecarbon in a process without torch -> bench/meters.md. Run it on an idle machine (minutes).
bench: $(STAMP)
	$(BIN)/python tools/bench.py $(NOTEBOOKS)

# constraints.txt is compiled from pyproject's ranges (all extras, every platform), preferring the
# versions it already pins: only what pyproject no longer allows moves. UPGRADE=1 moves everything.
lock: $(STAMP)
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	@grep -v '^#' constraints.txt > constraints.new || true
	$(BIN)/uv pip compile pyproject.toml --extra lab --extra dev --universal --python-version 3.11 \
	  --no-header --no-emit-package greenlab $(if $(UPGRADE),--upgrade) -q -o constraints.new
	@{ echo "# Exact versions behind the committed notebook outputs (python 3.11; torch resolves to the +cpu"; \
	   echo "# build where pip sees it). Compiled by \`make lock\` (uv $(UV_VERSION)) from pyproject.toml's ranges,"; \
	   echo "# keeping earlier pins where they still fit. \`make\` installs with -c constraints.txt. Do not edit."; \
	   cat constraints.new; } > constraints.txt && rm constraints.new

clean:
	rm -rf build .pytest_cache
