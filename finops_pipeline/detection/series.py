"""The cost series the pipeline forecasts and scores, and the detection pass over them.

Only Usage charges, on EffectiveCost, make up a series: Purchase, Tax, Credit and Adjustment rows
follow invoices and contracts, not consumption, and must neither raise nor hide an anomaly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import pandas as pd

from finops_pipeline.detection.periods import DAILY, Grain
from finops_pipeline.detection.scoring import (
    Score,
    Thresholds,
    anomaly_id,
    deviation_pct,
    same_weekday_history,
    score,
    severity,
)

SERIES_LEVELS = ("total", "sub_account_service")

META_COLUMNS = ["series_key", "series_level", "provider", "sub_account_id", "sub_account_name", "service_name", "team"]


def series_key(level: str, provider: str | None = None, sub_account_id: str | None = None, service_name: str | None = None) -> str:
    if level == "total":
        return "total"
    return f"{level}:{provider}/{sub_account_id}/{service_name}"


def build_series(usage: pd.DataFrame) -> pd.DataFrame:
    """Usage cost per series and period (a day, or an hour).

    ``usage`` has one row per period, provider, sub_account_id, sub_account_name, service_name,
    team with ``effective_cost``. Returns ``META_COLUMNS + [period, cost]``, one row per series and
    period.
    """
    if usage.empty:
        return pd.DataFrame(columns=[*META_COLUMNS, "period", "cost"])
    usage = usage.assign(effective_cost=usage["effective_cost"].astype(float))
    total = usage.groupby("period", as_index=False)["effective_cost"].sum()
    total = total.assign(series_key="total", series_level="total", provider=None, sub_account_id=None,
                         sub_account_name=None, service_name=None, team=None)
    grain = ["provider", "sub_account_id", "service_name"]
    # A series is owned by the team that carries most of its spend.
    team_cost = usage.groupby([*grain, "team"], as_index=False)["effective_cost"].sum()
    owner = (
        team_cost.sort_values([*grain, "effective_cost", "team"], ascending=[True, True, True, False, True])
        .drop_duplicates(grain)
        .set_index(grain)["team"]
    )
    names = usage.groupby(grain)["sub_account_name"].max()
    fine = usage.groupby(["period", *grain], as_index=False)["effective_cost"].sum()
    fine["series_level"] = "sub_account_service"
    fine["series_key"] = [series_key("sub_account_service", *k) for k in zip(fine.provider, fine.sub_account_id, fine.service_name)]
    idx = pd.MultiIndex.from_frame(fine[grain])
    fine["team"] = owner.reindex(idx).to_numpy()
    fine["sub_account_name"] = names.reindex(idx).to_numpy()
    out = pd.concat([total, fine], ignore_index=True).rename(columns={"effective_cost": "cost"})
    out["cost"] = out["cost"].round(6)  # the sums are exact to the micro-dollar; drop float noise
    return out[[*META_COLUMNS, "period", "cost"]].sort_values(["series_key", "period"], ignore_index=True)


def billed_periods(series: pd.DataFrame) -> set:
    """The periods that have any usage line item."""
    return set(series.loc[series["series_key"] == "total", "period"])


def history_by_series(series: pd.DataFrame) -> dict[str, pd.Series]:
    return {key: g.set_index("period")["cost"].astype(float) for key, g in series.groupby("series_key", sort=True)}


def series_metadata(series: pd.DataFrame) -> pd.DataFrame:
    return series[META_COLUMNS].drop_duplicates("series_key").set_index("series_key")


def detect(
    series: pd.DataFrame,
    forecasts: pd.DataFrame,
    periods: Iterable[date],
    thresholds: Thresholds = Thresholds(),
    grain: Grain = DAILY,
    min_history_days: int = 28,
) -> pd.DataFrame:
    """Score each series in each of ``periods`` against its horizon-0 forecast; and flag a series
    too young for a forecast that spends real money from the start (see ``new_series``).

    ``forecasts`` has ``target_period, series_key, expected_cost, lower_bound, upper_bound``. A
    series with no cost in a period it had a forecast for scores as 0: a service that stops is an
    anomaly too.
    """
    history = history_by_series(series)
    meta = series_metadata(series) if not series.empty else pd.DataFrame()
    # A period without a single usage line item is a bill not delivered yet, not every series
    # dropping to zero at once: nothing to score until it arrives.
    wanted = set(periods) & billed_periods(series)
    rows = []
    for f in forecasts.itertuples(index=False):
        if f.target_period not in wanted or f.series_key not in history:
            continue
        values = history[f.series_key]
        actual = float(values.get(f.target_period, 0.0))
        result = score(actual, f.expected_cost, f.lower_bound, f.upper_bound, same_weekday_history(values, f.target_period),
                       thresholds)
        if result is not None:
            rows.append(_row(f.series_key, meta.loc[f.series_key], f.target_period, actual, f.expected_cost,
                             f.lower_bound, f.upper_bound, result, grain))
    forecast_for = set(zip(forecasts.series_key, forecasts.target_period))
    for key, period, actual in new_series(history, wanted, min_history_days, thresholds):
        if (key, period) not in forecast_for:
            rows.append(_row(key, meta.loc[key], period, actual, 0.0, 0.0, 0.0,
                             Score("spike", actual, deviation_pct(actual, 0.0), None,
                                   severity(actual, deviation_pct(actual, 0.0), thresholds), ("new_series",)), grain))
    out = pd.DataFrame(rows, columns=DETECTED_COLUMNS)
    out["period_start"] = pd.to_datetime(out["period_start"], utc=True)
    return out.sort_values(["period_start", "impact_usd"], ascending=[True, False], ignore_index=True)


DETECTED_COLUMNS = ["anomaly_id", "period_start", "granularity", "series_level", "series_key", "provider", "sub_account_id",
                    "sub_account_name", "service_name", "team", "direction", "actual_cost", "expected_cost", "lower_bound",
                    "upper_bound", "impact_usd", "deviation_pct", "robust_z", "severity", "detectors"]


def new_series(history: dict[str, pd.Series], periods: set, min_history_days: int, thresholds: Thresholds):
    """(series_key, period, cost) for a series too young for a forecast (its first cost less than
    ``min_history_days`` before the period) spending at least the $ floor, on a bill that is older
    than that: a new service or account with real spend is news, not a baseline."""
    if not history:
        return
    bill_start = min(values.index.min() for values in history.values() if len(values))
    for key, values in sorted(history.items()):
        if key == "total" or values.empty:
            continue
        first = values.index.min()
        if first - bill_start < timedelta(days=min_history_days):
            continue  # there since the bill began: not new
        for period in sorted(p for p in periods if first <= p < first + timedelta(days=min_history_days)):
            cost = float(values.get(period, 0.0))
            if cost >= thresholds.min_impact_usd:
                yield key, period, cost


def _row(key, m, period, actual, expected, lower, upper, result: Score, grain: Grain) -> dict:
    return {
        "anomaly_id": anomaly_id(key, period, grain.name),
        "period_start": pd.Timestamp(period, tz="UTC"),
        "granularity": grain.name,
        "series_level": m.series_level,
        "series_key": key,
        "provider": m.provider,
        "sub_account_id": m.sub_account_id,
        "sub_account_name": m.sub_account_name,
        "service_name": m.service_name,
        "team": m.team,
        "direction": result.direction,
        "actual_cost": round(actual, 2),
        "expected_cost": round(float(expected), 2),
        "lower_bound": round(float(lower), 2),
        "upper_bound": round(float(upper), 2),
        "impact_usd": round(result.impact_usd, 2),
        "deviation_pct": round(result.deviation_pct, 1),
        "robust_z": None if result.robust_z is None else round(result.robust_z, 2),
        "severity": result.severity,
        "detectors": ",".join(result.detectors),
    }
