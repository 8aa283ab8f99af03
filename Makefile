# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export DAGSTER_HOME := $(CURDIR)/dagster_home

FINOPS_START_DATE ?= 2025-01-01
export FINOPS_START_DATE
YESTERDAY := $(shell $(PYTHON) -c "import datetime as d; print(d.date.today() - d.timedelta(days=1))")
PORT ?= 3000

.PHONY: install demo backfill ui test clean

$(BIN)/dagster: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/dagster

# Materialize the demo history up to yesterday as one single-run backfill (skipped when done).
data/.backfilled-$(YESTERDAY): $(BIN)/dagster
	mkdir -p data
	dagster asset materialize -m finops_pipeline.definitions --select '+anomalies,team_costs' \
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
