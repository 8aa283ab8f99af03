"""FINOPS_GRANULARITY=hourly end to end, in process: daily partitions holding their hours, from
raw billing through the hourly cost table and hourly forecasts to anomalies found the same day."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance

from finops_pipeline.definitions import build_definitions
from finops_pipeline.detection.series import series_key
from finops_pipeline.settings import load_settings
from finops_pipeline.sources import demo
from finops_pipeline_tests.conftest import range_tags

pytestmark = pytest.mark.integration

START, LAST = "2025-04-13", "2025-05-12"  # 30 days of hours; forecasts start after 28 days of history


@pytest.fixture(scope="module")
def hourly(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("hourly")
    settings = load_settings({"FINOPS_GRANULARITY": "hourly", "FINOPS_START_DATE": START, "FINOPS_DATA_DIR": str(data)})
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("hourly_cost_pipeline").execute_in_process(
            instance=instance, tags=range_tags(START, LAST))
    assert result.success
    return settings.duckdb_path


def query(db: Path, sql: str, params: list | None = None):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_every_stage_runs_by_the_hour(hourly):
    hours = 30 * 24
    assert query(hourly, "SELECT count(DISTINCT hour) FROM hourly_costs") == [(hours,)]
    # The hourly table reconciles with the hourly line items the demo bill delivers.
    expected = demo.generate_hourly(datetime(2025, 4, 13), datetime(2025, 5, 13)).EffectiveCost.astype(float).sum()
    (total,) = query(hourly, "SELECT sum(effective_cost) FROM hourly_costs")[0]
    assert float(total) == pytest.approx(expected, abs=0.05)
    # Forecasts exist for the hours after four weeks of history, each from a fit ending the night before.
    forecasts = query(hourly, """SELECT min(forecast_period), max(forecast_period), count(DISTINCT forecast_period),
                                        bool_and(trained_through < forecast_period), max(horizon), any_value(granularity)
                                 FROM cost_forecasts""")[0]
    first, last, periods, no_look_ahead, horizon, grain = forecasts
    assert (first.hour, first.date().isoformat(), last.date().isoformat(), periods) == (0, "2025-05-11", LAST, 48)
    assert no_look_ahead and horizon == 48 and grain == "hourly"


def test_the_api_loop_is_caught_within_its_first_hours(hourly):
    loop = next(t for t in demo.injected_anomalies() if t.name == "api_loop")
    key = series_key("sub_account_service", loop.provider, loop.sub_account_id, loop.service_name)
    found = query(hourly, """SELECT timezone('UTC', period_start), granularity, severity, actual_cost, expected_cost
                             FROM anomalies WHERE series_key = ? ORDER BY 1""", [key])
    assert found, "the api_loop's Lambda spike was not flagged in any hour"
    assert {f[1] for f in found} == {"hourly"}
    assert all(f[0].date() == loop.start_date for f in found)  # nothing flagged on the normal day before
    assert found[0][0].hour <= 3  # caught the same morning, not the next day
    assert all(f[3] > 3 * f[4] for f in found)
