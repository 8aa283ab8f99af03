"""Shared fixtures: a pipeline materialized once per session over 405 days of the demo bill."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, Definitions

from finops_pipeline.definitions import build_definitions
from finops_pipeline.settings import Settings, load_settings
from finops_pipeline.warehouse import migrate
from finops_pipeline.warehouse.resource import configure

WINDOW_START = "2025-01-01"
WINDOW_END = "2026-02-09"  # inclusive: 405 daily partitions


def range_tags(start: str, end: str) -> dict:
    """What a single-run backfill of ``start...end`` puts on its run."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


@contextlib.contextmanager
def pipeline_env(**env: str):
    """Set environment variables for the block: resources read secrets (tokens, keys) from the
    process environment at run time, and the CLI reads all its settings there."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def fresh_warehouse(path: str = ":memory:"):
    """A DuckDB connection with the warehouse schema, as the pipeline's resource gives it."""
    with duckdb.connect(path) as con:
        migrate(configure(con))
        yield con


@dataclass
class Pipeline:
    data_dir: Path
    settings: Settings
    defs: Definitions
    instance: DagsterInstance

    def run(self, job: str, start: str | None = None, end: str | None = None):
        tags = range_tags(start, end or start) if start else {}
        result = self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, tags=tags)
        assert result.success
        return result

    def query(self, sql: str, params: list | None = None):
        with duckdb.connect(str(self.settings.duckdb_path), read_only=True) as con:
            return con.execute(sql, params or []).df()


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Pipeline:
    data_dir = tmp_path_factory.mktemp("pipeline")
    settings = load_settings({"FINOPS_DATA_DIR": str(data_dir)})
    (data_dir / "dagster_home").mkdir()
    instance = DagsterInstance.local_temp(str(data_dir / "dagster_home"))
    p = Pipeline(data_dir, settings, build_definitions(settings), instance)
    p.run("daily_cost_pipeline", WINDOW_START, WINDOW_END)
    yield p
    instance.dispose()
