# labkit — the two commands the README promises, plus a few helpers.
#
#   make lab    set up .venv (once), then run every scenario headless into reports/ (one per core at a time)
#   make test   set up .venv (once), then run the whole test suite (tests/), TEST_JOBS workers in parallel
#   make bench  set up .venv (once), then `labkit bench`: every benchmarks/bench_*.py, one table
#   make setup  only set up .venv (what the dev container and Binder run)
#   make browser  the browser tests only (JupyterLab in Debian's Chromium; screenshots in reports/browser/)
#
# Setup is one `python3 -m venv .venv` plus `pip install -e .[test]`.  The install
# is redone only when pyproject.toml changes (or .venv is deleted): a stamp file
# inside .venv records that it is up to date, so the targets are quick to rerun.

SHELL := /bin/bash

# The interpreter that creates the venv: python3.11 when the machine has it.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)

VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.labkit-installed
OUT   ?= reports
PYTEST_ARGS ?=
# passed to `labkit run --all` by `make lab`, e.g. LAB_ARGS='--jobs 1' (default: one notebook per core at a time)
LAB_ARGS ?=

.PHONY: lab test bench setup clean help controlplane browser durations

help:
	@echo "make lab    run every scenario headless on the embedded simulator into $(OUT)/"
	@echo "make test   run the whole test suite (unit tests and notebook execution)"
	@echo "make bench  run every benchmarks/bench_*.py and print one table (labkit bench)"
	@echo "make setup  only create .venv and install labkit into it"
	@echo "make browser  the browser tests only: JupyterLab in Debian's Chromium (apt-get install chromium)"
	@echo "make durations  measure every notebook's headless run time (labkit/data/workshop-durations.yaml)"
	@echo "make clean  remove .venv and $(OUT)/"

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@echo "Installing labkit and its dependencies into $(VENV) (a few minutes the first time) ..."
	$(PY) -m pip install --quiet -e '.[test]'
	@# A named kernelspec inside the venv (sys-prefix) that JupyterLab offers as
	@# "Python (labkit)". Headless runs use the venv's own "python3" kernelspec,
	@# which Jupyter starts with the running (venv) interpreter.
	$(PY) -m ipykernel install --sys-prefix --name labkit --display-name 'Python (labkit)' >/dev/null
	@touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/labkit run --all --out $(OUT) $(LAB_ARGS)
	@echo "Reports are in $(OUT)/ : one folder per scenario with the executed notebook, metrics.json, figures and run.log."

# The whole suite (tests/), spread over TEST_JOBS pytest-xdist worker processes (default:
# one per core).  Tests that share a wide fixture -- the one real control plane, the
# hostile-repository pool, JupyterLab and Chromium, a module's simulation, one notebook's
# run -- go to one worker together (tests/parallel.py), the long groups first (xdist keeps
# that order: --no-loadscope-reorder).
# TEST_JOBS=0 runs everything in this one process, as a plain `pytest` does.
TEST_JOBS ?= auto
test: $(STAMP) controlplane
	$(PY) -m pytest -n $(TEST_JOBS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

# The real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# KWOK) built from Go module sources into ~/.cache/labkit, for the real-cluster and
# parity tests.  Cached: a no-op once built (the first build takes 15-30 min on 2 cores).
# Skipped when Go is absent or LABKIT_SKIP_CONTROLPLANE=1 (those tests then skip, saying why).
controlplane: $(STAMP)
	@if [ -n "$$LABKIT_SKIP_CONTROLPLANE" ] && [ "$$LABKIT_SKIP_CONTROLPLANE" != "0" ]; then \
	  echo "LABKIT_SKIP_CONTROLPLANE set: not building the real control plane (tests/kube integration tests will skip)"; \
	elif ! command -v go >/dev/null 2>&1; then \
	  echo "no Go toolchain: not building the real control plane (tests/kube integration tests will skip)"; \
	else \
	  $(VENV)/bin/labkit cluster build; \
	fi

# Every benchmarks/bench_*.py in its own process, then one table (figure, value, target);
# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS='--quick' or BENCH_ARGS='--only engine'.
BENCH_ARGS ?=
bench: $(STAMP)
	$(VENV)/bin/labkit bench $(BENCH_ARGS)

# The browser tests alone (tests/browser): `labkit lab` on 127.0.0.1 driven in Debian's Chromium.
browser: $(STAMP)
	$(PY) -m pytest tests/browser $(PYTEST_ARGS)

# Each notebook's headless run time, measured with `labkit run NAME` (the workshop map and guide quote them).
durations: $(STAMP)
	$(PY) -m labkit.workshop.durations

clean:
	rm -rf $(VENV) $(OUT)
