# Two commands do everything: `make demo` and `make test`.
# A supported Python (3.11 or 3.12): python3 if it is one, else python3.12, else python3.11.
PYTHON ?= $(shell for p in python3 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] not in [(3, 11), (3, 12)])' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DAGSTER_HOME := $(CURDIR)/dagster_home

FINOPS_START_DATE ?= 2025-01-01
export FINOPS_START_DATE
YESTERDAY := $(shell date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)
PORT ?= 3000

.PHONY: install demo backfill ui test clean check-python

check-python:
	@test -n "$(PYTHON)" || { echo "finops-pipeline needs Python 3.11 or 3.12 (python3.11, python3.12, or a python3 of" \
		"those versions on PATH); none was found. Install one, or run: make PYTHON=/path/to/python3.12 ..." >&2; exit 1; }
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if v in [(3, 11), (3, 12)] else \
		f"$(PYTHON) is Python {v[0]}.{v[1]}; finops-pipeline needs 3.11 or 3.12")' \
		|| { echo "$(PYTHON) cannot be used: finops-pipeline needs Python 3.11 or 3.12" >&2; exit 1; }
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"

$(BIN)/dagster: pyproject.toml
	@$(MAKE) --no-print-directory check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/dagster

# Materialize the demo history up to yesterday as one single-run backfill (skipped when done).
data/.backfilled-$(YESTERDAY): $(BIN)/dagster
	mkdir -p data
	dagster asset materialize -m finops_pipeline.definitions --select '*anomalies,team_costs' \
		--partition-range $(FINOPS_START_DATE)...$(YESTERDAY)
	touch $@

backfill: data/.backfilled-$(YESTERDAY)

ui: install
	dagster dev -w workspace.yaml -p $(PORT)

demo: backfill ui

test: install
	pytest -ra

clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/logs dagster_home/schedules dbt_project/target
