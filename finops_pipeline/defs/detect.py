"""Stage 3: Prophet forecasts and anomaly scoring, plus the daily schedule that drives the pipeline."""

import base64
import json
from datetime import date, datetime, timedelta, timezone

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    BackfillPolicy,
    Config,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster_duckdb import DuckDBResource

from finops_pipeline.charts import cost_band_chart
from finops_pipeline.detection.forecasting import MODEL_NAME, ForecastConfig, forecast
from finops_pipeline.detection.scoring import Thresholds, top_contributors
from finops_pipeline.detection.series import build_series, detect, history_by_series, series_metadata
from finops_pipeline.partitions import daily_partitions
from finops_pipeline.resources import OutboxResource
from finops_pipeline.storage import ANOMALIES_COLUMNS, COST_FORECASTS_COLUMNS, connect, ensure_table, replace_window, utc_bounds

DAILY_COSTS = AssetKey("daily_costs")
STG_BILLING = AssetKey("stg_focus__billing")
RAW_BILLING = AssetKey("raw_billing")

USAGE_SQL = """
    SELECT day, provider, sub_account_id, any_value(sub_account_name) AS sub_account_name, service_name, team,
           sum(effective_cost) AS effective_cost
    FROM daily_costs
    WHERE charge_category = 'Usage' AND day < ?
    GROUP BY ALL
    ORDER BY ALL  -- a fixed order keeps float sums, and so the fits, identical across reruns
"""


def _window_days(context: AssetExecutionContext) -> tuple[date, date, list[date]]:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return start, end, [start + timedelta(days=i) for i in range((end - start).days)]


def _as_dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def _usage_series(duckdb: DuckDBResource, end: date) -> pd.DataFrame:
    with connect(duckdb) as con:
        usage = con.execute(USAGE_SQL, [end]).df()
    return build_series(_as_dates(usage, "day"))


class ForecastSettings(Config):
    """Run config for the launchpad; defaults are the pure ForecastConfig's."""

    refit_every_days: int = ForecastConfig.refit_every_days
    min_history_days: int = ForecastConfig.min_history_days
    max_history_days: int = ForecastConfig.max_history_days
    horizon_days: int = ForecastConfig.horizon_days
    interval_width: float = ForecastConfig.interval_width


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="detect",
    kinds={"prophet", "duckdb", "python"},
    owners=["team:finops"],
    deps=[DAILY_COSTS],
    pool="duckdb",
    metadata={"dagster/table_name": "main.cost_forecasts"},
)
def cost_forecasts(context: AssetExecutionContext, config: ForecastSettings, duckdb: DuckDBResource) -> MaterializeResult:
    """Prophet forecast of daily Usage EffectiveCost per series (the total, and each sub-account ×
    service): the expected value and band for the partition day, and the next 30 days. Each day's
    fit sees only data from before its weekly refit anchor, so backfills match daily runs."""
    start, end, days = _window_days(context)
    series = _usage_series(duckdb, end)
    predicted = forecast(history_by_series(series), days, ForecastConfig(**config.model_dump()))
    meta = series_metadata(series) if len(series) else pd.DataFrame()
    if len(predicted):
        predicted = predicted.join(meta[["series_level", "provider", "sub_account_id", "service_name"]], on="series_key")
    predicted["model"] = MODEL_NAME
    predicted = predicted.reindex(columns=list(COST_FORECASTS_COLUMNS))
    with connect(duckdb) as con:
        replace_window(con, "cost_forecasts", predicted, "forecast_date >= ? AND forecast_date < ?", [start, end])
    today = predicted[predicted["horizon_days"] == 0]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(predicted),
            "series_forecast": int(today["series_key"].nunique()),
            "days": len(days),
            "fits": int(today.groupby(["series_key", "trained_through"]).ngroups) if len(today) else 0,
            "total_expected_usd": round(float(today.loc[today.series_key == "total", "expected_cost"].sum()), 2),
        }
    )


class DetectionSettings(Config):
    """Run config for the launchpad; defaults are the pure Thresholds'."""

    min_impact_usd: float = Thresholds.min_impact_usd
    min_deviation_pct: float = Thresholds.min_deviation_pct
    min_robust_z: float = Thresholds.min_robust_z
    warning_impact_usd: float = Thresholds.warning_impact_usd
    warning_deviation_pct: float = Thresholds.warning_deviation_pct
    critical_impact_usd: float = Thresholds.critical_impact_usd
    critical_deviation_pct: float = Thresholds.critical_deviation_pct


def _contributors(con, anomaly: pd.Series) -> list[dict]:
    """What moved one level finer: sub-account × service for the total, resources for a service,
    each against the mean of the same weekday over the previous four weeks."""
    day = anomaly["period_start"].date()
    days = [day - timedelta(days=7 * k) for k in range(5)]
    if anomaly["series_level"] == "total":
        sql = """SELECT sub_account_name || ' / ' || service_name AS name, day, sum(effective_cost) AS cost
                 FROM daily_costs WHERE charge_category = 'Usage' AND day IN (SELECT unnest(?::DATE[]))
                 GROUP BY ALL"""
        params, dimension = [days], "sub_account / service"
    else:
        sql = """SELECT coalesce(resource_id, '(no resource)') AS name, day, sum(effective_cost) AS cost
                 FROM stg_focus__billing WHERE charge_category = 'Usage' AND provider = ? AND sub_account_id = ?
                   AND service_name = ? AND day IN (SELECT unnest(?::DATE[])) GROUP BY ALL"""
        params = [anomaly["provider"], anomaly["sub_account_id"], anomaly["service_name"], days]
        dimension = "resource"
    costs = _as_dates(con.execute(sql, params).df(), "day")
    current = costs[costs.day == day].groupby("name")["cost"].sum().astype(float)
    baseline = costs[costs.day != day].groupby("name")["cost"].sum().astype(float) / 4
    return top_contributors(current, baseline, n=3, dimension=dimension)


def _chart_panels(con, series: pd.DataFrame, found: pd.DataFrame, start: date, end: date) -> list:
    """The total, and the service with the largest anomaly, over the window plus some context."""
    keys = ["total"]
    services = found[found.series_key != "total"]
    if len(services):
        keys.append(services.loc[services["impact_usd"].abs().idxmax(), "series_key"])
    first = min(start - timedelta(days=28), end - timedelta(days=120))
    bands = _as_dates(
        con.execute(
            """SELECT target_day AS day, series_key, expected_cost, lower_bound, upper_bound FROM cost_forecasts
               WHERE horizon_days = 0 AND target_day >= ? AND target_day < ? AND series_key IN (SELECT unnest(?::VARCHAR[]))""",
            [first, end, keys],
        ).df(),
        "day",
    )
    # Earlier anomalies stay marked for context; the window's own come from this run.
    earlier = _as_dates(
        con.execute(
            "SELECT period_start AS day, series_key, actual_cost AS cost FROM anomalies WHERE period_start >= ? AND period_start < ?",
            [first, start],
        ).df(),
        "day",
    )
    current = found.assign(day=found["period_start"].dt.date, cost=found["actual_cost"])[["day", "series_key", "cost"]]
    marks = pd.concat([earlier, current])
    panels = []
    for key in keys:
        history = series[(series.series_key == key) & (series.day >= first)][["day", "cost"]]
        history = history.merge(bands[bands.series_key == key].drop(columns="series_key"), on="day", how="left")
        title = "Total usage cost" if key == "total" else key.split(":", 1)[1]
        panels.append((title, history, marks[marks.series_key == key].drop_duplicates("day")))
    return panels


@asset(
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="detect",
    kinds={"duckdb", "python"},
    owners=["team:finops"],
    # stg_focus__billing is a view: reading it for contributors reads raw_billing itself.
    deps=[cost_forecasts, DAILY_COSTS, STG_BILLING, RAW_BILLING],
    pool="duckdb",
    metadata={"dagster/table_name": "main.anomalies"},
)
def anomalies(
    context: AssetExecutionContext, config: DetectionSettings, duckdb: DuckDBResource, outbox: OutboxResource
) -> MaterializeResult:
    """One row per series and day whose Usage EffectiveCost fell outside its Prophet band, confirmed
    by a robust z-score against the same weekday and above the $ and % floors. Each row carries
    actual, expected, band, $ impact, deviation, severity and its top contributors. Purchase, Tax,
    Credit and Adjustment rows never raise one."""
    start, end, days = _window_days(context)
    thresholds = Thresholds(**config.model_dump())
    series = _usage_series(duckdb, end)
    with connect(duckdb) as con:
        ensure_table(con, "anomalies")
        forecasts = _as_dates(
            con.execute(
                """SELECT target_day, series_key, expected_cost, lower_bound, upper_bound FROM cost_forecasts
                   WHERE horizon_days = 0 AND forecast_date >= ? AND forecast_date < ?""",
                [start, end],
            ).df(),
            "target_day",
        )
        found = detect(series, forecasts, days, thresholds)
        found["top_contributors"] = [json.dumps(_contributors(con, row)) for _, row in found.iterrows()]
        # An anomaly keeps the time it was first detected when its partition is re-run.
        previous = con.execute(
            "SELECT anomaly_id, detected_at FROM anomalies WHERE period_start >= ? AND period_start < ?", [start, end]
        ).df()
        known = dict(zip(previous["anomaly_id"], previous["detected_at"]))
        now = pd.Timestamp(datetime.now(timezone.utc))
        found["detected_at"] = [known.get(i, now) for i in found["anomaly_id"]]
        new_ids = [i for i in found["anomaly_id"] if i not in known]
        panels = _chart_panels(con, series, found, start, end)
        replace_window(con, "anomalies", found.reindex(columns=list(ANOMALIES_COLUMNS)),
                       "period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ", utc_bounds(start, end))
    png = cost_band_chart(panels)
    chart_path = outbox.path("charts") / f"anomalies_{start}_{end}.png"
    chart_path.write_bytes(png)
    preview = found[["period_start", "series_key", "actual_cost", "expected_cost", "impact_usd", "deviation_pct", "severity"]]
    preview = preview.reindex(preview["impact_usd"].abs().sort_values(ascending=False).index).head(10)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(found),
            "new_anomalies": len(new_ids),
            "by_severity": MetadataValue.json(found["severity"].value_counts().to_dict()),
            "top_anomalies": MetadataValue.md(preview.assign(period_start=preview.period_start.dt.date).to_markdown(index=False)
                                              if len(preview) else "No anomalies in this window."),
            "chart": MetadataValue.md(f"![cost vs forecast](data:image/png;base64,{base64.b64encode(png).decode()})"),
            "chart_path": MetadataValue.path(str(chart_path)),
        }
    )


@asset_check(asset=cost_forecasts, pool="duckdb", description="Every band is ordered and non-negative: 0 ≤ lower ≤ expected ≤ upper.")
def forecast_bands_are_ordered(duckdb: DuckDBResource) -> AssetCheckResult:
    with connect(duckdb) as con:
        bad = con.execute(
            "SELECT count(*) FROM cost_forecasts WHERE NOT (0 <= lower_bound AND lower_bound <= expected_cost + 1e-9 "
            "AND expected_cost <= upper_bound + 1e-9)"
        ).fetchone()[0]
    return AssetCheckResult(passed=bad == 0, metadata={"bad_rows": int(bad)})


@asset_check(asset=anomalies, pool="duckdb", description="Anomalies come only from series and days that had a forecast.")
def anomalies_have_forecasts(duckdb: DuckDBResource) -> AssetCheckResult:
    with connect(duckdb) as con:
        orphans = con.execute(
            """SELECT count(*) FROM anomalies a WHERE NOT EXISTS (
                   SELECT 1 FROM cost_forecasts f WHERE f.horizon_days = 0 AND f.series_key = a.series_key
                   AND f.target_day = CAST(timezone('UTC', a.period_start) AS DATE))"""
        ).fetchone()[0]
    return AssetCheckResult(passed=orphans == 0, metadata={"orphans": int(orphans)})


daily_cost_pipeline = define_asset_job(
    "daily_cost_pipeline",
    selection=AssetSelection.groups("ingest", "transform", "detect"),
    partitions_def=daily_partitions,
    description="Raw billing → dbt models → forecasts → anomalies for one or more days.",
)

daily_cost_pipeline_schedule = build_schedule_from_partitioned_job(
    daily_cost_pipeline,
    hour_of_day=6,
    minute_of_hour=0,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every morning at 06:00 UTC, yesterday's partition: most providers have the day's usage by then.",
)
