"""What detection reads from the warehouse: the usage series and the SKUs' first days (dbt
views), the bands a window is scored against, and the slices a root cause is looked for in. The
SQL is in ``sql/``; the grain names the tables and the period column. The root-cause slices stay
here rather than in dbt: they are a lookup of each anomaly's own five periods, not a table."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd

from finops_pipeline.detection.scoring import top_contributors_by
from finops_pipeline.detection.series import LEVEL_COLUMNS, series_key
from finops_pipeline.grain import Grain, Period
from finops_pipeline.warehouse import register, utc_bounds
from finops_pipeline.warehouse.sql_files import sql_file


def sql(name: str) -> str:
    return sql_file("finops_pipeline.detection", name)


def _grain_sql(name: str, grain: Grain, **more) -> str:
    return sql(name).format(cost_table=grain.cost_table, period=grain.period_column, period_type=grain.period_sql_type,
                            **more)


def as_periods(grain: Grain, frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """``columns`` of ``frame`` as the grain's periods, in place."""
    for column in columns:
        frame[column] = grain.periods_of(frame[column]) if len(frame) else []
    return frame


def usage_series(con: duckdb.DuckDBPyConnection, grain: Grain, end: Period) -> pd.DataFrame:
    """Every detection series before ``end``, one row per series and period: ``META_COLUMNS``
    (key, level and the columns that name it), ``period`` and ``cost``."""
    return as_periods(grain, con.execute(sql("usage").format(series_model=grain.series_model), [end]).df(), "period")


def new_skus(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, weeks_days: int) -> pd.DataFrame:
    """The window's usage of SKUs in their first ``weeks_days`` on their series (the new-SKU rule)."""
    frame = con.execute(_grain_sql("new_skus", grain, weeks=int(weeks_days)), [end, start]).df()
    frame["series_key"] = [series_key("sub_account_service", *k)
                           for k in zip(frame.provider, frame.sub_account_id, frame.service_name)]
    return as_periods(grain, frame, "period")


def ai_usage(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, lookback: int) -> pd.DataFrame:
    """AI usage per period, project × model (``series_key``) and token type over ``[start, end)``
    and the ``lookback`` periods before (``ai_rules``); empty when the bill has none."""
    frame = con.execute(sql("ai_usage").format(period=grain.period_column, ai_table=grain.ai_table),
                        [start - lookback * grain.step, end]).df()
    frame["series_key"] = [series_key("sub_account_service", *k) for k in zip(frame.provider, frame.sub_account_id, frame.model)]
    return as_periods(grain, frame, "period")


def ai_key_usage(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, weeks: int) -> pd.DataFrame:
    """AI usage per period and API key (``series_key``) over ``[start, end)`` and the ``weeks``
    weeks before (``ai_rules.runaway_key``)."""
    frame = con.execute(sql("ai_key_usage").format(period=grain.period_column, ai_table=grain.ai_table),
                        [start - weeks * grain.periods_per_week * grain.step, end]).df()
    frame["series_key"] = [series_key("api_key", *k) for k in zip(frame.provider, frame.sub_account_id, frame.api_key_id)]
    return as_periods(grain, frame, "period")


def gpu_usage(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period, idle_minutes: int) -> pd.DataFrame:
    """Each GPU's periods in ``[start, end)`` with the cost of its idle streaks of at least
    ``idle_minutes`` (``ai_rules.idle_gpus``), its series as ``series_key``."""
    frame = con.execute(sql("gpu_usage").format(period=grain.period_column), [start, end, int(idle_minutes)]).df()
    frame["series_key"] = [series_key("sub_account_service", *k)
                           for k in zip(frame.provider, frame.sub_account_id, frame.service_name)]
    return as_periods(grain, frame, "period")


def past_expected(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period) -> pd.DataFrame:
    """Every series' horizon-0 expected cost in ``[start, end)``: what calibration compares the
    periods' costs with."""
    frame = con.execute(sql("past_expected"), [grain.name, *utc_bounds(start, end)]).df()
    return as_periods(grain, frame, "target_period")


def quality_inputs(con: duckdb.DuckDBPyConnection, grain: Grain) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(each series' periods per profile, each incident with its series' profile when it began)."""
    return (con.execute(sql("quality_periods"), [grain.name]).df(), con.execute(sql("quality_incidents"), [grain.name]).df())


def window_forecasts(con: duckdb.DuckDBPyConnection, grain: Grain, start: Period, end: Period) -> pd.DataFrame:
    frame = con.execute(sql("window_forecasts"), [grain.name, *utc_bounds(start, end)]).df()
    return as_periods(grain, frame, "target_period")


# One level finer than each series level, the dimensions its root cause is looked for in (the
# first is the headline `top_contributors`), as SQL over the cost mart (None) or the line items.
_ACCOUNT_SERVICE = "sub_account_name || ' / ' || service_name"
_REGION = "coalesce(region_id, '(none)')"
ROOT_CAUSE_DIMENSIONS = {
    "total": (None, {"sub_account / service": _ACCOUNT_SERVICE, "provider": "provider", "team": "team",
                     "region": _REGION}),
    "provider": (None, {"sub_account / service": _ACCOUNT_SERVICE, "team": "team", "region": _REGION}),
    "sub_account": (None, {"service": "service_name", "team": "team", "region": _REGION}),
    "service": (None, {"sub_account": "sub_account_name", "team": "team", "region": _REGION}),
    "team": (None, {"sub_account / service": _ACCOUNT_SERVICE, "region": _REGION}),
    "sub_account_service": ("stg_focus__billing", {"resource": "coalesce(resource_id, '(no resource)')",
                                                   "sku": "coalesce(sku_id, '(no sku)')", "region": _REGION,
                                                   "charge_description": "coalesce(charge_description, '(none)')"}),
    # An API key's spend, by the model and token type it went to; and by project × model, so a
    # model's own alert can explain the key's (``series.explained_across``).
    "api_key": ("stg_focus__billing", {"sub_account / service": _ACCOUNT_SERVICE,
                                       "token type": "coalesce(sku_meter, '(none)')"}),
}


def root_causes(con: duckdb.DuckDBPyConnection, grain: Grain, found: pd.DataFrame) -> list[dict[str, list[dict]]]:
    """For each anomaly, what moved, one level finer, in each dimension: the top three items by
    the size of their change, each with actual, expected (the mean of the same point of the week
    over the previous four weeks) and delta. One query per series level, however many anomalies."""
    causes: list[dict] = [{} for _ in range(len(found))]
    for level, rows in found.reset_index(drop=True).groupby("series_level"):
        table, dimensions = ROOT_CAUSE_DIMENSIONS[level]
        columns = LEVEL_COLUMNS[level]
        # Each anomaly's series and its five periods: the anomaly's (lag 0) and four weeks before.
        wanted = pd.DataFrame(
            [(i, grain.period(r.period_start) - timedelta(days=7 * lag), lag, *(getattr(r, c) for c in columns))
             for i, r in zip(rows.index, rows.itertuples()) for lag in range(5)],
            columns=["_row", "_period", "_lag", *(f"_{c}" for c in columns)],
        )
        register(con, "_wanted", wanted)
        names = ", ".join(f"{expression} AS \"{dimension}\"" for dimension, expression in dimensions.items())
        on = "".join(f" AND c.{c} = w._{c}" for c in columns)
        costs = con.execute(_grain_sql("root_cause_slices", grain, names=names, on=on,
                                       table=table or grain.cost_table)).df()
        con.unregister("_wanted")
        now, before = costs[costs["_lag"] == 0], costs[costs["_lag"] > 0]
        top = {d: top_contributors_by(now.groupby(["_row", d])["cost"].sum(),
                                      before.groupby(["_row", d])["cost"].sum() / 4, n=3, dimension=d)
               for d in dimensions}
        for i in rows.index:
            causes[i] = {d: top[d].get(i, []) for d in dimensions}
    return causes


def chart_panels(con: duckdb.DuckDBPyConnection, grain: Grain, series: pd.DataFrame, found: pd.DataFrame,
                 start: Period, end: Period) -> list:
    """The total, and the service with the largest anomaly, over the window plus some context
    (120 periods, at least 28 before the window), as ``charts.cost_band_chart`` panels."""
    keys = ["total"]
    services = found[(found.series_key != "total") & found["explained_by"].isna()]
    if len(services):
        keys.append(services.loc[services["impact_usd"].abs().idxmax(), "series_key"])
    first = min(start - 28 * grain.step, end - 120 * grain.step)
    bands = as_periods(grain, con.execute(sql("chart_bands"), [grain.name, *utc_bounds(first, end), keys]).df(), "period")
    # Earlier anomalies stay marked for context; the window's own come from this run.
    earlier = as_periods(grain, con.execute(sql("chart_marks"), [grain.name, *utc_bounds(first, start)]).df(), "period")
    current = as_periods(grain, found.assign(period=found["period_start"], cost=found["actual_cost"]), "period")
    marks = pd.concat([earlier, current[["period", "series_key", "cost"]]])
    panels = []
    for key in keys:
        history = series[(series.series_key == key) & (series.period >= first)][["period", "cost"]]
        history = history.merge(bands[bands.series_key == key].drop(columns="series_key"), on="period", how="left")
        title = "Total usage cost" if key == "total" else key.split(":", 1)[1]
        panels.append((title, history, marks[marks.series_key == key].drop_duplicates("period")))
    return panels
