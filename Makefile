# Two commands do everything on a fresh clone: `make run` (headline notebook, CPU preset, report)
# and `make test`. Both create .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PRESET ?= cpu-quick

.PHONY: run test test-fast coverage lab check-report bench index golden gpu-check clean-outputs

# constraints.txt: the exact versions CI and the golden records use (pyproject.toml has lower bounds only)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing into $(VENV) (first run takes about a minute)"
	@$(PY) -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]' 2>&1 | { grep -vE "is ignored|BuildBackendWarning|^\s*(!!|\*+|with strategy|Please be careful|name as your package|$$)" || true; }
	@touch $@

run: $(STAMP)
	$(PY) -m lib.cli run notebooks/01_baseline.ipynb -p preset $(PRESET)

# Two workers, one per core (the tests run torch at one thread); a test file stays on one worker, so the
# module fixtures are made once. Serially the same tests took 14 min 42 s on 2 idle cores.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

# Everything but the tests marked slow (notebook runs, sweeps): for a quick loop while editing.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

# The paired interval's coverage on all 144 cells of the simulation grid (make test runs a quarter of them).
coverage: $(STAMP)
	COVERAGE_GRID=full $(PY) -m pytest tests/test_stats.py -k full_grid

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=.

# Screenshot of the newest HTML report in headless Chromium (Debian's chromium package), and of the
# explorer running in JupyterLab after its slider moved (outputs/screenshots/explorer.png).
check-report: $(STAMP)
	@command -v chromium >/dev/null || { echo "installing Debian chromium"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(PY) -m lib.cli screenshot
	$(PY) scripts/browser_check.py

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_test_time.py
	$(PY) benchmarks/bench_dropout.py

# The first command on a GPU machine: gpu-paper at batch 4096, compiled, bf16, a few hundred steps, then the
# sequel's model to 256 iterations; prints the memory plan, speed, MFU, memory and the bf16 gap, exits 1 on any
# failure. It runs with the machine's own python3 and its CUDA torch, and installs nothing (README: "Running on
# a GPU" lists what it needs); GPU_PY=.venv/bin/python runs it in the venv instead.
GPU_PY ?= python3
gpu-check:
	$(GPU_PY) scripts/gpu_check.py

index: $(STAMP)
	$(PY) -m lib.cli index

# Certify lib's computing code as RESULTS_VERSION's (lib/provenance.py): after a refactor it records the new code
# when every behavioural fingerprint is unchanged; after a change of what runs compute it refuses until
# RESULTS_VERSION is bumped, then records the new fingerprints (tests/golden/).
golden: $(STAMP)
	$(PY) -m lib.golden certify

# Whether the computing code is the certified one: .ci/run and `make findings` refuse an uncertified tree.
.PHONY: golden-status
golden-status: $(STAMP)
	$(PY) -m lib.golden status

# The claim checker: the runs the adaptive seed plan asks for at $(PRESET) (5 seeds per variant, up to 10 for a
# claim its interval leaves undecided; lib/findings/findings.py seed_plan), through the sweep runner (finished runs are
# skipped, so a killed `make findings` resumes), then findings/$(PRESET).parquet and notebooks/10_findings.ipynb,
# which writes FINDINGS.md. WORKERS x THREADS should match the cores (2 x 1 here). MAX_RUNS=N: a slice.
.PHONY: findings
findings: WORKERS ?= 2
findings: THREADS ?= 1
findings: MAX_RUNS ?= 0
findings: golden-status
	$(PY) -m lib.cli findings sweep --preset $(PRESET) --workers $(WORKERS) --threads $(THREADS) --max-runs $(MAX_RUNS) -o findings/$(PRESET).parquet
	$(PY) -m lib.cli run notebooks/10_findings.ipynb -p preset $(PRESET)
