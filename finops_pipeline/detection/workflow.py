"""The detection workflows a partition runs: forecast its periods, then score them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from finops_pipeline.detection.ai_rules import RUNAWAY_WEEKS
from finops_pipeline.detection.calibration import Calibration, calibrate
from finops_pipeline.detection.fit_store import load_fits, store_fits
from finops_pipeline.detection.forecasting import Fits, ForecastConfig, forecast, refit_anchor
from finops_pipeline.detection.incidents import name_incidents, summarize
from finops_pipeline.detection.quality import detection_quality
from finops_pipeline.detection.queries import (ai_key_usage, ai_usage, chart_panels, gpu_usage, new_skus, past_expected,
                                               quality_inputs, root_causes, usage_series, window_forecasts)
from finops_pipeline.detection.scoring import Thresholds
from finops_pipeline.detection.series import billed_periods, detect, explained_across, history_by_series, series_metadata
from finops_pipeline.feedback import accepted_levels, mark_anomalies
from finops_pipeline.grain import Grain, Period
from finops_pipeline.warehouse import replace_window, table_columns, utc_bounds


@dataclass(frozen=True)
class Forecasted:
    rows: pd.DataFrame  # as written to cost_forecasts
    fits: Fits


@dataclass(frozen=True)
class Scored:
    anomalies: pd.DataFrame  # as written to anomalies
    new_anomaly_ids: list[str]
    unbilled: list[Period]  # periods without a single usage line item: not scored
    chart_panels: list  # for charts.cost_band_chart


def forecast_window(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period,
                    config: ForecastConfig) -> Forecasted:
    """Forecast every series for the periods of ``[start, end)`` and replace the window's rows of
    `cost_forecasts`, keeping the Prophet fits used in `forecast_fits`, in one transaction."""
    anchors = utc_bounds(refit_anchor(start, config.refit_every_days), end)
    series = usage_series(con, grain, end)
    accepted = {key: grain.period(p) for key, p in accepted_levels(con).items()}
    fits = load_fits(con, grain, anchors)
    history = history_by_series(series)
    predicted = forecast(history, grain.periods(start, end), config, accepted, fits)
    predicted = _calibrated(con, grain, start, end, history, predicted, config)
    if len(predicted):
        meta = series_metadata(series)
        predicted = predicted.join(meta[["series_level", "provider", "sub_account_id", "service_name"]], on="series_key")
    predicted["granularity"] = grain.name
    predicted = predicted.reindex(columns=table_columns(con, "cost_forecasts"))
    replace_window(con, "cost_forecasts", predicted, "forecast_period >= ?::TIMESTAMPTZ AND forecast_period < ?::TIMESTAMPTZ",
                   utc_bounds(start, end), before_commit=lambda: store_fits(con, grain, fits, anchors))
    return Forecasted(predicted, fits)


def _calibrated(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, history: dict,
                predicted: pd.DataFrame, config: ForecastConfig) -> pd.DataFrame:
    """``predicted`` with each horizon-0 row's calibrated bounds and profile, calibrated on the
    stored forecasts before the window and the window's own."""
    calibration = Calibration.for_granularity(grain.name, false_pages_per_year=config.false_pages_per_year)
    now = predicted.loc[predicted["horizon"] == 0, ["series_key", "target_period", "expected_cost"]]
    before = past_expected(con, grain, grain.period(start - calibration.lookback()), start)
    bounds = calibrate(history, pd.concat([before, now], ignore_index=True), grain.periods(start, end), grain.name,
                       calibration)
    return predicted.merge(bounds.assign(horizon=0), on=["series_key", "target_period", "horizon"], how="left")


def score_window(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, thresholds: Thresholds,
                 min_history_days: int) -> Scored:
    """Score the periods of ``[start, end)`` against their forecasts and the rules, find each
    anomaly's root cause, and replace the window's rows of `anomalies`, naming incidents and
    marking people's answers on them in the same transaction."""
    periods = grain.periods(start, end)
    bounds = utc_bounds(start, end)
    series = usage_series(con, grain, end)
    found = detect(series, window_forecasts(con, grain, start, end), periods, thresholds, grain, min_history_days,
                   new_skus(con, grain, start, end, min_history_days),
                   ai_usage(con, grain, start, end, thresholds.ai_baseline_periods),
                   ai_key_usage(con, grain, start, end, RUNAWAY_WEEKS),
                   gpu_usage(con, grain, start, end, thresholds.gpu_idle_minutes))
    billed = billed_periods(series)
    causes = root_causes(con, grain, found)
    found["explained_by"] = explained_across(found, causes)
    found["root_cause"] = [json.dumps(c) for c in causes]
    found["top_contributors"] = [json.dumps(next(iter(c.values()))) for c in causes]  # the headline dimension
    # An anomaly keeps the time it was first detected when its partition is re-run.
    previous = con.execute(
        "SELECT anomaly_id, detected_at FROM anomalies WHERE period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ",
        bounds,
    ).df()
    known = dict(zip(previous["anomaly_id"], previous["detected_at"]))
    now = pd.Timestamp(datetime.now(timezone.utc))
    found["detected_at"] = [known.get(i, now) for i in found["anomaly_id"]]
    panels = chart_panels(con, grain, series, found, start, end)

    def name_and_mark() -> None:  # an answer on an incident covers the periods it grows by
        name_incidents(con)
        mark_anomalies(con)

    replace_window(con, "anomalies", found.reindex(columns=table_columns(con, "anomalies")),
                   "period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ", bounds, before_commit=name_and_mark)
    return Scored(found, [i for i in found["anomaly_id"] if i not in known], [p for p in periods if p not in billed], panels)


def roll_up_incidents(con: duckdb.DuckDBPyConnection, grain: Grain, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """Replace the grain's rows of `incidents` with the roll-up of its anomalies (severity by
    ``thresholds``, default the grain's); returns them."""
    found = con.execute("SELECT * FROM anomalies WHERE granularity = ?", [grain.name]).df()
    last_scored = con.execute(
        "SELECT series_key, max(target_period) FROM cost_forecasts WHERE horizon = 0 AND granularity = ? GROUP BY 1",
        [grain.name],
    ).fetchall()
    table = summarize(found, pd.Series(dict(last_scored), dtype="object"),
                      thresholds or Thresholds.for_granularity(grain.name))
    replace_window(con, "incidents", table, "granularity = ?", [grain.name])
    return table


def measure_quality(con: duckdb.DuckDBPyConnection, grain: Grain, false_pages_per_year: float) -> pd.DataFrame:
    """Replace the grain's rows of `detection_quality` (see ``quality.detection_quality``); returns them."""
    table = detection_quality(*quality_inputs(con, grain), grain, false_pages_per_year)
    replace_window(con, "detection_quality", table, "granularity = ?", [grain.name])
    return table
