"""Stage 3: Prophet forecasts and anomaly scoring, plus the schedule that drives the pipeline."""

import base64
import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
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
from finops_pipeline.detection.forecasting import Fits, ForecastConfig, forecast, refit_anchor
from finops_pipeline.defs.feedback import accepted_levels, mark_anomalies
from finops_pipeline.detection.incidents import assign_incidents, summarize
from finops_pipeline.detection.scoring import Thresholds, top_contributors_by
from finops_pipeline.detection.series import (
    LEVEL_COLUMNS,
    billed_periods,
    build_series,
    detect,
    history_by_series,
    series_key,
    series_metadata,
)
from finops_pipeline.partitions import GRAIN, PARTITIONED_STAGES, billing_partitions
from finops_pipeline.resources import OutboxResource
from finops_pipeline.storage import ANOMALIES_COLUMNS, COST_FORECASTS_COLUMNS, FORECAST_FITS_COLUMNS, connect, ensure_table, replace_window, utc_bounds

COSTS = AssetKey(f"{GRAIN.name}_costs")  # the dbt mart at the pipeline's grain
STG_BILLING = AssetKey("stg_focus__billing")
RAW_BILLING = AssetKey("raw_billing")

# The grain's cost table and its period column (a DATE for days, a UTC TIMESTAMP for hours).
COSTS_TABLE, PERIOD_COLUMN, PERIOD_TYPE = ("hourly_costs", "hour", "TIMESTAMP") if GRAIN.name == "hourly" \
    else ("daily_costs", "day", "DATE")

USAGE_SQL = f"""
    SELECT {PERIOD_COLUMN} AS period, provider, sub_account_id, any_value(sub_account_name) AS sub_account_name,
           service_name, team, sum(effective_cost) AS effective_cost
    FROM {COSTS_TABLE}
    WHERE charge_category = 'Usage' AND {PERIOD_COLUMN} < ?
    GROUP BY ALL
    ORDER BY ALL  -- a fixed order keeps float sums, and so the fits, identical across reruns
"""

_FORECAST_DEFAULTS = ForecastConfig.for_granularity(GRAIN.name)
_THRESHOLD_DEFAULTS = Thresholds.for_granularity(GRAIN.name)


def _window(context: AssetExecutionContext) -> tuple[date, date, list[date]]:
    """The partition window's first and end period, and its periods."""
    window = context.partition_time_window
    start, end = GRAIN.period(window.start), GRAIN.period(window.end)
    return start, end, GRAIN.periods(start, end)


def as_periods(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = GRAIN.periods_of(frame[column]) if len(frame) else []
    return frame


def _new_skus(con, start: date, end: date) -> pd.DataFrame:
    """Usage cost per sub-account × service, SKU and period of the window, for the SKUs in their
    first weeks on their series, on a bill older than that (the new-SKU rule)."""
    weeks = f"INTERVAL {_FORECAST_DEFAULTS.min_history_days} DAY"
    frame = con.execute(
        f"""WITH usage AS (SELECT * FROM stg_focus__billing WHERE charge_category = 'Usage' AND sku_id IS NOT NULL
                             AND {PERIOD_COLUMN} < ?::{PERIOD_TYPE}),
                 first_seen AS (SELECT provider, sub_account_id, service_name, sku_id, min({PERIOD_COLUMN}) AS first_period
                                FROM usage GROUP BY ALL)
            SELECT u.{PERIOD_COLUMN} AS period, provider, sub_account_id, service_name, sku_id,
                   sum(effective_cost)::DOUBLE AS cost
            FROM usage u JOIN first_seen f USING (provider, sub_account_id, service_name, sku_id)
            WHERE u.{PERIOD_COLUMN} >= ?::{PERIOD_TYPE}
              AND u.{PERIOD_COLUMN} < f.first_period + {weeks}
              AND f.first_period >= (SELECT min({PERIOD_COLUMN}) FROM usage) + {weeks}
            GROUP BY ALL""",
        [end, start],
    ).df()
    frame["series_key"] = [series_key("sub_account_service", *k)
                           for k in zip(frame.provider, frame.sub_account_id, frame.service_name)]
    return as_periods(frame, "period")


def _usage_series(duckdb: DuckDBResource, end: date) -> pd.DataFrame:
    with connect(duckdb) as con:
        usage = con.execute(USAGE_SQL, [end]).df()
    return build_series(as_periods(usage, "period"))


class ForecastSettings(Config):
    """Run config for the launchpad; defaults are the pure ForecastConfig's for the grain."""

    refit_every_days: int = _FORECAST_DEFAULTS.refit_every_days
    min_history_days: int = _FORECAST_DEFAULTS.min_history_days
    max_history_days: int = _FORECAST_DEFAULTS.max_history_days
    horizon_days: int = _FORECAST_DEFAULTS.horizon_days
    interval_width: float = _FORECAST_DEFAULTS.interval_width
    prophet_min_daily_usd: float = _FORECAST_DEFAULTS.prophet_min_daily_usd
    prophet_max_series: int = _FORECAST_DEFAULTS.prophet_max_series


@asset(
    partitions_def=billing_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="detect",
    kinds={"prophet", "duckdb", "python"},
    owners=["team:finops"],
    deps=[COSTS],
    pool="duckdb",
    metadata={"dagster/table_name": "main.cost_forecasts"},
)
def cost_forecasts(context: AssetExecutionContext, config: ForecastSettings, duckdb: DuckDBResource) -> MaterializeResult:
    """Forecast of Usage EffectiveCost per series (the total, each provider, sub-account, service,
    team and sub-account × service) and period (a day; an hour with FINOPS_GRANULARITY=hourly):
    the expected value and band for the partition's periods. Prophet, with the horizon after them,
    for the series that carry the money; the weekday median for the long tail. Each period's fit
    sees only data from before its refit anchor (weekly for days, daily for hours), so backfills
    match scheduled runs. A level a person marked `expected` or `planned` is not clipped from the
    training data."""
    start, end, periods = _window(context)
    forecast_config = ForecastConfig.for_granularity(GRAIN.name, **config.model_dump())
    anchors = utc_bounds(refit_anchor(start, forecast_config.refit_every_days), end)
    series = _usage_series(duckdb, end)
    with connect(duckdb) as con:
        accepted = {key: GRAIN.period(p) for key, p in accepted_levels(con).items()}
        fits = Fits(_stored_fits(con, anchors))
    predicted = forecast(history_by_series(series), periods, forecast_config, accepted, fits)
    meta = series_metadata(series) if len(series) else pd.DataFrame()
    if len(predicted):
        predicted = predicted.join(meta[["series_level", "provider", "sub_account_id", "service_name"]], on="series_key")
    predicted["granularity"] = GRAIN.name
    predicted = predicted.reindex(columns=list(COST_FORECASTS_COLUMNS))
    with connect(duckdb) as con:
        replace_window(con, "cost_forecasts", predicted,
                       "forecast_period >= ?::TIMESTAMPTZ AND forecast_period < ?::TIMESTAMPTZ", utc_bounds(start, end),
                       before_commit=lambda: _store_fits(con, fits, anchors))
    today = predicted[predicted["horizon"] == 0]
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(predicted),
            "series_forecast": int(today["series_key"].nunique()),
            "periods": len(periods),
            "fits": int(today.groupby(["series_key", "trained_through"]).ngroups) if len(today) else 0,
            # Prophet fits run now, and those reused from an earlier run of the same refit anchor
            # on the same data (the days after a Monday, a re-run).
            "prophet_fits_run": len(fits.ran),
            "prophet_fits_reused": len(fits.used - set(fits.ran)),
            "series_per_model": MetadataValue.json(today.groupby("model")["series_key"].nunique().to_dict()),
            "total_expected_usd": round(float(today.loc[today.series_key == "total", "expected_cost"].sum()), 2),
        }
    )


def _stored_fits(con, anchors: list[str]) -> dict:
    """The stored Prophet fits of the refit anchors in [anchors), by key."""
    ensure_table(con, "forecast_fits")
    rows = con.execute(
        """SELECT fit_key, expected_cost, lower_bound, upper_bound FROM forecast_fits
           WHERE granularity = ? AND anchor >= ?::TIMESTAMPTZ AND anchor < ?::TIMESTAMPTZ""",
        [GRAIN.name, *anchors],
    ).fetchall()
    return {key: tuple(np.asarray(column, dtype=float) for column in columns) for key, *columns in rows}


def _store_fits(con, fits: Fits, anchors: list[str]) -> None:
    """Keep the fits this run used for its anchors, and only those (a fit of data since
    restated is never needed again); add the ones it ran. In the transaction that wrote the
    forecasts."""
    ensure_table(con, "forecast_fits")
    con.execute(
        """DELETE FROM forecast_fits WHERE granularity = ? AND anchor >= ?::TIMESTAMPTZ AND anchor < ?::TIMESTAMPTZ
             AND fit_key NOT IN (SELECT unnest(?::VARCHAR[]))""",
        [GRAIN.name, *anchors, sorted(fits.used)],
    )
    if not fits.ran:
        return
    now = pd.Timestamp(datetime.now(timezone.utc))
    frame = pd.DataFrame(
        [{"fit_key": key, "granularity": GRAIN.name, "anchor": pd.Timestamp(task.anchor, tz="UTC"),
          "series_key": task.series_key, "model": task.model, "training_periods": len(task.values),
          "expected_cost": list(window[0]), "lower_bound": list(window[1]), "upper_bound": list(window[2]),
          "fitted_at": now}
         for key, (task, window) in sorted(fits.ran.items())],
        columns=list(FORECAST_FITS_COLUMNS),
    )
    con.register("_fits", frame)
    # A run of another day of the week may have stored the same fit meanwhile.
    columns = ", ".join(FORECAST_FITS_COLUMNS)
    con.execute(f"INSERT INTO forecast_fits ({columns}) SELECT {columns} FROM _fits "
                "WHERE fit_key NOT IN (SELECT fit_key FROM forecast_fits)")
    con.unregister("_fits")


class DetectionSettings(Config):
    """Run config for the launchpad; defaults are the pure Thresholds' for the grain."""

    min_impact_usd: float = _THRESHOLD_DEFAULTS.min_impact_usd
    min_deviation_pct: float = _THRESHOLD_DEFAULTS.min_deviation_pct
    min_robust_z: float = _THRESHOLD_DEFAULTS.min_robust_z
    warning_impact_usd: float = _THRESHOLD_DEFAULTS.warning_impact_usd
    warning_deviation_pct: float = _THRESHOLD_DEFAULTS.warning_deviation_pct
    critical_impact_usd: float = _THRESHOLD_DEFAULTS.critical_impact_usd
    critical_deviation_pct: float = _THRESHOLD_DEFAULTS.critical_deviation_pct
    alert_drop_pct: float = _THRESHOLD_DEFAULTS.alert_drop_pct
    alert_noise_sigmas: float = _THRESHOLD_DEFAULTS.alert_noise_sigmas
    caused_warning_impact_usd: float = _THRESHOLD_DEFAULTS.caused_warning_impact_usd
    level_shift_sigmas: float = _THRESHOLD_DEFAULTS.level_shift_sigmas


# One level finer than each series level, the dimensions its root cause is looked for in (the
# first is the headline `top_contributors`), as SQL over the cost table or the line items.
_ACCOUNT_SERVICE = "sub_account_name || ' / ' || service_name"
_REGION = "coalesce(region_id, '(none)')"
ROOT_CAUSE_DIMENSIONS = {
    "total": (COSTS_TABLE, {"sub_account / service": _ACCOUNT_SERVICE, "provider": "provider", "team": "team",
                            "region": _REGION}),
    "provider": (COSTS_TABLE, {"sub_account / service": _ACCOUNT_SERVICE, "team": "team", "region": _REGION}),
    "sub_account": (COSTS_TABLE, {"service": "service_name", "team": "team", "region": _REGION}),
    "service": (COSTS_TABLE, {"sub_account": "sub_account_name", "team": "team", "region": _REGION}),
    "team": (COSTS_TABLE, {"sub_account / service": _ACCOUNT_SERVICE, "region": _REGION}),
    "sub_account_service": ("stg_focus__billing", {"resource": "coalesce(resource_id, '(no resource)')",
                                                   "sku": "coalesce(sku_id, '(no sku)')", "region": _REGION,
                                                   "charge_description": "coalesce(charge_description, '(none)')"}),
}


def _root_causes(con, found: pd.DataFrame) -> list[dict[str, list[dict]]]:
    """For each anomaly, what moved, one level finer, in each dimension: the top three items by
    the size of their change, each with actual, expected (the mean of the same point of the week
    over the previous four weeks) and delta. One query per series level, however many anomalies."""
    causes: list[dict] = [{} for _ in range(len(found))]
    for level, rows in found.reset_index(drop=True).groupby("series_level"):
        table, dimensions = ROOT_CAUSE_DIMENSIONS[level]
        columns = LEVEL_COLUMNS[level]
        # Each anomaly's series and its five periods: the anomaly's (lag 0) and four weeks before.
        wanted = pd.DataFrame(
            [(i, GRAIN.period(r.period_start) - timedelta(days=7 * lag), lag, *(getattr(r, c) for c in columns))
             for i, r in zip(rows.index, rows.itertuples()) for lag in range(5)],
            columns=["_row", "_period", "_lag", *(f"_{c}" for c in columns)],
        )
        con.register("_wanted", wanted)
        names = ", ".join(f"{sql} AS \"{dimension}\"" for dimension, sql in dimensions.items())
        on = "".join(f" AND c.{c} = w._{c}" for c in columns)
        costs = con.execute(
            f"""SELECT w._row, w._lag, {names}, sum(c.effective_cost)::DOUBLE AS cost
                FROM {table} c JOIN _wanted w ON c.{PERIOD_COLUMN} = w._period::{PERIOD_TYPE}{on}
                WHERE c.charge_category = 'Usage'
                GROUP BY ALL"""
        ).df()
        con.unregister("_wanted")
        now, before = costs[costs["_lag"] == 0], costs[costs["_lag"] > 0]
        top = {d: top_contributors_by(now.groupby(["_row", d])["cost"].sum(),
                                      before.groupby(["_row", d])["cost"].sum() / 4, n=3, dimension=d)
               for d in dimensions}
        for i in rows.index:
            causes[i] = {d: top[d].get(i, []) for d in dimensions}
    return causes


def _chart_panels(con, series: pd.DataFrame, found: pd.DataFrame, start: date, end: date) -> list:
    """The total, and the service with the largest anomaly, over the window plus some context
    (120 periods, at least 28 before the window)."""
    keys = ["total"]
    services = found[(found.series_key != "total") & found["explained_by"].isna()]
    if len(services):
        keys.append(services.loc[services["impact_usd"].abs().idxmax(), "series_key"])
    first = min(start - 28 * GRAIN.step, end - 120 * GRAIN.step)
    bounds = utc_bounds(first, end)
    bands = as_periods(
        con.execute(
            """SELECT target_period AS period, series_key, expected_cost, lower_bound, upper_bound FROM cost_forecasts
               WHERE horizon = 0 AND granularity = ? AND target_period >= ?::TIMESTAMPTZ AND target_period < ?::TIMESTAMPTZ
                 AND series_key IN (SELECT unnest(?::VARCHAR[]))""",
            [GRAIN.name, *bounds, keys],
        ).df(),
        "period",
    )
    # Earlier anomalies stay marked for context; the window's own come from this run.
    earlier = as_periods(
        con.execute(
            """SELECT period_start AS period, series_key, actual_cost AS cost FROM anomalies
               WHERE granularity = ? AND period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ""",
            [GRAIN.name, *utc_bounds(first, start)],
        ).df(),
        "period",
    )
    current = as_periods(found.assign(period=found["period_start"], cost=found["actual_cost"]), "period")
    marks = pd.concat([earlier, current[["period", "series_key", "cost"]]])
    panels = []
    for key in keys:
        history = series[(series.series_key == key) & (series.period >= first)][["period", "cost"]]
        history = history.merge(bands[bands.series_key == key].drop(columns="series_key"), on="period", how="left")
        title = "Total usage cost" if key == "total" else key.split(":", 1)[1]
        panels.append((title, history, marks[marks.series_key == key].drop_duplicates("period")))
    return panels


@asset(
    partitions_def=billing_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="detect",
    kinds={"duckdb", "python"},
    owners=["team:finops"],
    # stg_focus__billing is a view: reading it for contributors reads raw_billing itself.
    deps=[cost_forecasts, COSTS, STG_BILLING, RAW_BILLING],
    pool="duckdb",
    metadata={"dagster/table_name": "main.anomalies"},
)
def anomalies(
    context: AssetExecutionContext, config: DetectionSettings, duckdb: DuckDBResource, outbox: OutboxResource
) -> MaterializeResult:
    """One row per series and period (day, or hour) whose Usage EffectiveCost fell outside its
    forecast band, confirmed by a robust z-score against the same point of the week and above the
    $ and % floors; or that a rule flagged (a new series or SKU with real spend, a slow ramp, a
    weekend billed like a weekday). Each row carries actual, expected, band, $ impact, deviation,
    severity, the detectors that fired, its root cause one level finer, and the finer anomaly that
    explains it, if any (only unexplained ones are alerted). Purchase, Tax, Credit and Adjustment
    rows never raise one."""
    start, end, periods = _window(context)
    thresholds = Thresholds(**config.model_dump())
    series = _usage_series(duckdb, end)
    bounds = utc_bounds(start, end)
    with connect(duckdb) as con:
        ensure_table(con, "anomalies")
        ensure_table(con, "cost_forecasts")
        forecasts = as_periods(
            con.execute(
                """SELECT target_period, series_key, model, expected_cost, lower_bound, upper_bound FROM cost_forecasts
                   WHERE horizon = 0 AND granularity = ? AND forecast_period >= ?::TIMESTAMPTZ
                     AND forecast_period < ?::TIMESTAMPTZ""",
                [GRAIN.name, *bounds],
            ).df(),
            "target_period",
        )
        found = detect(series, forecasts, periods, thresholds, GRAIN, _FORECAST_DEFAULTS.min_history_days,
                       _new_skus(con, start, end))
        billed = billed_periods(series)
        unbilled = [GRAIN.label(p) for p in periods if p not in billed]
        if unbilled:
            context.log.warning(f"No usage line items for {', '.join(unbilled)}: not scored (export late or missing?)")
        causes = _root_causes(con, found)
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
        new_ids = [i for i in found["anomaly_id"] if i not in known]
        panels = _chart_panels(con, series, found, start, end)
        replace_window(con, "anomalies", found.reindex(columns=list(ANOMALIES_COLUMNS)),
                       "period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ", bounds,
                       before_commit=lambda: _name_incidents(con))
    png = cost_band_chart(panels, unit="hour" if GRAIN.name == "hourly" else "day")
    chart_path = outbox.path("charts") / f"anomalies_{GRAIN.label(start).replace(' ', 'T')}_{GRAIN.label(end).replace(' ', 'T')}.png"
    chart_path.write_bytes(png)
    preview = found[["period_start", "series_key", "actual_cost", "expected_cost", "impact_usd", "deviation_pct", "severity"]]
    preview = preview.reindex(preview["impact_usd"].abs().sort_values(ascending=False).index).head(10)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(found),
            "new_anomalies": len(new_ids),
            "periods_without_billing_data": MetadataValue.json(unbilled),
            "by_severity": MetadataValue.json(found["severity"].value_counts().to_dict()),
            "top_anomalies": MetadataValue.md(preview.assign(period_start=[GRAIN.label(p) for p in preview.period_start])
                                              .to_markdown(index=False)
                                              if len(preview) else "No anomalies in this window."),
            "chart": MetadataValue.md(f"![cost vs forecast](data:image/png;base64,{base64.b64encode(png).decode()})"),
            "chart_path": MetadataValue.path(str(chart_path)),
        }
    )


def _name_incidents(con) -> None:
    """Give every anomaly its incident, in the transaction that wrote the window: a re-run of a
    past window can join or split the runs of anomalies after it, so all are named again."""
    frame = con.execute("SELECT anomaly_id, series_key, granularity, direction, period_start FROM anomalies").df()
    frame["incident_id"] = assign_incidents(frame)
    con.register("_incident_ids", frame[["anomaly_id", "incident_id"]])
    con.execute(
        """UPDATE anomalies SET incident_id = i.incident_id FROM _incident_ids i
           WHERE anomalies.anomaly_id = i.anomaly_id AND anomalies.incident_id IS DISTINCT FROM i.incident_id"""
    )
    mark_anomalies(con)  # an answer on an incident covers the periods it grows by


@asset(
    group_name="detect",
    kinds={"duckdb", "python"},
    owners=["team:finops"],
    deps=[anomalies, cost_forecasts],
    pool="duckdb",
    metadata={"dagster/table_name": "main.incidents"},
)
def incidents(duckdb: DuckDBResource) -> MaterializeResult:
    """The anomalous periods of a series that follow each other, rolled up as one incident: start,
    peak, latest, number of periods, total $ excess, highest severity, and status (open, or
    resolved once a later period was scored back in its band). A level shift is one incident.
    Alerts are sent per incident."""
    with connect(duckdb) as con:
        ensure_table(con, "anomalies")
        ensure_table(con, "cost_forecasts")
        found = con.execute("SELECT * FROM anomalies WHERE granularity = ?", [GRAIN.name]).df()
        last_scored = con.execute(
            "SELECT series_key, max(target_period) FROM cost_forecasts WHERE horizon = 0 AND granularity = ? GROUP BY 1",
            [GRAIN.name],
        ).fetchall()
        table = summarize(found, pd.Series(dict(last_scored), dtype="object"))
        replace_window(con, "incidents", table, "granularity = ?", [GRAIN.name])
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "open": int((table["status"] == "open").sum()),
            "by_severity": MetadataValue.json(table["severity"].value_counts().to_dict()),
            "longest_periods": int(table["periods"].max()) if len(table) else 0,
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


@asset_check(asset=anomalies, pool="duckdb",
             description="Anomalies a forecast band flagged come only from series and periods that had a forecast.")
def anomalies_have_forecasts(duckdb: DuckDBResource) -> AssetCheckResult:
    with connect(duckdb) as con:
        orphans = con.execute(
            """SELECT count(*) FROM anomalies a WHERE a.detectors LIKE '%_interval%' AND NOT EXISTS (
                   SELECT 1 FROM cost_forecasts f WHERE f.horizon = 0 AND f.series_key = a.series_key
                   AND f.granularity = a.granularity AND f.target_period = a.period_start)"""
        ).fetchone()[0]
    return AssetCheckResult(passed=orphans == 0, metadata={"orphans": int(orphans)})


cost_pipeline = define_asset_job(
    f"{GRAIN.name}_cost_pipeline",
    selection=PARTITIONED_STAGES,
    partitions_def=billing_partitions,
    description=f"Raw billing → dbt models → forecasts → anomalies for one or more {'hours' if GRAIN.name == 'hourly' else 'days'}.",
)

_HOURLY = GRAIN.name == "hourly"
cost_pipeline_schedule = build_schedule_from_partitioned_job(
    cost_pipeline,
    hour_of_day=None if _HOURLY else 6,
    minute_of_hour=30 if _HOURLY else 0,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every hour at :30, the hour before: hourly exports carry an hour's usage within minutes."
    if _HOURLY else "Every morning at 06:00 UTC, yesterday's partition: most providers have the day's usage by then.",
)
