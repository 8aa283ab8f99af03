"""Shared fixtures: a pipeline materialized once per session over 405 days of the demo bill."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions

from finops_pipeline.definitions import build_definitions
from finops_pipeline.defs.transform.assets import DBT_EXECUTABLE, DBT_PROJECT_DIR
from finops_pipeline.grain import DAILY
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


def backfilled(env: dict[str, str], start: str, last: str) -> Path:
    """The pipeline of the settings ``env`` run over ``start...last`` as one single-run backfill
    (its grain's job), incidents rolled up as the alert job starts them; its DuckDB file."""
    from finops_pipeline.detection.workflow import roll_up_incidents

    with pipeline_env(**env), DagsterInstance.ephemeral() as instance:
        settings = load_settings(env)
        job = f"{settings.grain.name}_cost_pipeline"
        result = build_definitions(settings).resolve_job_def(job).execute_in_process(
            instance=instance, tags=range_tags(start, last))
    assert result.success
    with duckdb.connect(str(settings.duckdb_path)) as con:
        roll_up_incidents(con, settings.grain)
    return settings.duckdb_path


def load_raw_billing(tmp_path: Path, variables: dict[str, str], start: str, end: str | None = None):
    """raw_billing materialized for ``start..end`` with the settings ``variables``, as the asset
    runs it; the result, with the run's log lines in ``logs``."""
    from dagster import materialize

    from finops_pipeline.defs.ingest.assets import build_raw_billing
    from finops_pipeline.warehouse.resource import WarehouseResource

    variables = {"FINOPS_DATA_DIR": str(tmp_path), **variables}
    instance = DagsterInstance.ephemeral()
    with pipeline_env(**variables):
        settings = load_settings(variables)
        result = materialize([build_raw_billing(settings)],
                             resources={"warehouse": WarehouseResource(database=str(settings.duckdb_path))},
                             tags=range_tags(start, end or start), raise_on_error=False, instance=instance)
    result.logs = [entry.user_message for entry in instance.all_logs(result.run_id)]  # what the run's log shows
    return result


@pytest.fixture(scope="session")
def cost_series(tmp_path_factory):
    """dbt's view of every detection series (daily_cost_series), run on a frame of usage rows
    (period, provider, sub_account_id, sub_account_name, service_name, team, effective_cost)
    as daily_costs would hold them. The model is compiled by dbt once; each call runs its SQL on
    a new database."""
    folder = tmp_path_factory.mktemp("cost_series")
    subprocess.run([DBT_EXECUTABLE, "compile", "--quiet", "--select", "daily_cost_series", "--project-dir", str(DBT_PROJECT_DIR),
                    "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(folder / "target"),
                    "--vars", json.dumps({"duckdb_path": str(folder / "series.duckdb")})], check=True, cwd=DBT_PROJECT_DIR)
    compiled = next((folder / "target" / "compiled").rglob("daily_cost_series.sql")).read_text()
    calls = itertools.count()

    def run(usage: pd.DataFrame) -> pd.DataFrame:
        db = folder / str(next(calls)) / "series.duckdb"  # the catalog name the SQL was compiled for
        db.parent.mkdir()
        with duckdb.connect(str(db)) as con:
            con.register("usage", usage.assign(day=usage["period"], charge_category="Usage"))
            con.execute("CREATE TABLE daily_costs AS SELECT day::DATE AS day, provider, sub_account_id, sub_account_name, "
                        "service_name, team, charge_category, effective_cost::DECIMAL(18, 6) AS effective_cost FROM usage")
            con.execute("CREATE TABLE daily_ai_usage (day DATE, provider VARCHAR, sub_account_id VARCHAR, "
                        "api_key_id VARCHAR, team VARCHAR, effective_cost DECIMAL(18, 6))")  # no AI spend
            series = con.execute(f"SELECT * FROM ({compiled}) ORDER BY series_key, period").df()
        series["period"] = DAILY.periods_of(series["period"])
        return series

    return run


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
