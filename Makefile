# Two commands do everything on a fresh clone: `make run` (headline notebook, CPU preset, report)
# and `make test`. Both create .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PRESET ?= cpu-quick

.PHONY: run test lab check-report bench index clean-outputs

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing into $(VENV) (first run takes about a minute)"
	@$(PY) -m pip install -q --upgrade pip 2>&1 | { grep -v "is ignored" || true; }
	@$(PY) -m pip install -q -e '.[dev]' 2>&1 | { grep -vE "is ignored|BuildBackendWarning|^\s*(!!|\*+|with strategy|Please be careful|name as your package|$$)" || true; }
	@touch $@

run: $(STAMP)
	$(PY) -m lib.workbook run notebooks/01_baseline.ipynb -p preset $(PRESET)

test: $(STAMP)
	$(PY) -m pytest

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=.

# Screenshot of the newest HTML report in headless Chromium (Debian's chromium package), and of the
# explorer running in JupyterLab after its slider moved (outputs/screenshots/explorer.png).
check-report: $(STAMP)
	@command -v chromium >/dev/null || { echo "installing Debian chromium"; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	$(PY) -m lib.workbook screenshot
	$(PY) scripts/browser_check.py

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_memory.py

index: $(STAMP)
	$(PY) -m lib.workbook index
