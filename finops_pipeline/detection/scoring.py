"""Deciding whether a day's cost is an anomaly, how bad it is, and what drove it.

Statistics only: the forecast band says the value is unusual, a robust z-score against the same
weekday confirms it is not just a noisy series, and dollar and percentage floors keep alerts to
what is worth a person's time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Thresholds:
    """An anomaly needs both ``min_impact_usd`` and ``min_deviation_pct``; severity rises with both."""

    min_impact_usd: float = 100.0
    min_deviation_pct: float = 20.0
    min_robust_z: float = 4.5
    warning_impact_usd: float = 250.0
    warning_deviation_pct: float = 50.0
    critical_impact_usd: float = 2000.0
    critical_deviation_pct: float = 100.0
    # A drop pages someone (warning or above) only when at least this much of the expected cost is
    # gone: spending less is news when something stopped, not when a holiday thinned the bill.
    alert_drop_pct: float = 50.0

    @classmethod
    def for_granularity(cls, granularity: str) -> Thresholds:
        """The defaults are per day; an hour's dollar floors are a 24th of them."""
        if granularity != "hourly":
            return cls()
        base = cls()
        return cls(**{f: round(getattr(base, f) / 24, 2) if f.endswith("_usd") else getattr(base, f)
                      for f in base.__dataclass_fields__})


@dataclass(frozen=True)
class Score:
    direction: str
    impact_usd: float
    deviation_pct: float
    robust_z: float | None
    severity: str
    detectors: tuple[str, ...]


def anomaly_id(series_key: str, period_start: date, granularity: str = "daily") -> str:
    """Stable across reruns and backfills: the same series and period always get the same id."""
    return hashlib.sha256(f"{granularity}|{series_key}|{period_start.isoformat()}".encode()).hexdigest()[:24]


def robust_z(actual: float, history: np.ndarray, min_points: int = 4) -> float | None:
    """(actual − median) / (1.4826·MAD) of ``history``; None with too little history.

    The MAD is floored at 2 % of the median so a perfectly flat series does not turn a cent of
    change into an infinite score.
    """
    history = np.asarray(history, dtype=float)
    if len(history) < min_points:
        return None
    median = float(np.median(history))
    mad = 1.4826 * float(np.median(np.abs(history - median)))
    scale = max(mad, 0.02 * abs(median), 0.01)
    return (actual - median) / scale


def deviation_pct(actual: float, expected: float) -> float:
    if expected <= 0:
        return 999.0 if actual > 0 else 0.0
    return (actual - expected) / expected * 100.0


def severity(impact_usd: float, deviation: float, t: Thresholds) -> str:
    """Both floors of a level, or the dollar floor of the level above alone: a $5,000 overrun on a
    large bill matters even when it is only 30 % of the day. A drop of less than
    ``alert_drop_pct`` stays info."""
    impact, dev = abs(impact_usd), abs(deviation)
    if impact_usd < 0 and dev < t.alert_drop_pct:
        return "info"
    if (impact >= t.critical_impact_usd and dev >= t.critical_deviation_pct) or impact >= 5 * t.critical_impact_usd:
        return "critical"
    if (impact >= t.warning_impact_usd and dev >= t.warning_deviation_pct) or impact >= t.critical_impact_usd:
        return "warning"
    return "info"


def score(
    actual: float,
    expected: float,
    lower: float,
    upper: float,
    same_weekday_history: np.ndarray,
    t: Thresholds = Thresholds(),
    band: str = "prophet_interval",
    same_day_of_month: np.ndarray | None = None,
) -> Score | None:
    """Score one period of one series against its ``band`` (the model that drew it); None when it
    is not an anomaly."""
    if lower <= actual <= upper:
        return None
    impact = actual - expected
    dev = deviation_pct(actual, expected)
    if abs(impact) < t.min_impact_usd or abs(dev) < t.min_deviation_pct:
        return None
    if same_day_of_month is not None and len(same_day_of_month) >= 3:
        # Month-start batch jobs, billing runs: a value like the same day of the last months, where
        # the series usually leaves its band the same way, is the month's pattern, not news.
        usual = float(np.median(same_day_of_month))
        beyond = usual > upper if impact > 0 else usual < lower
        runs_high = impact > 0 and usual >= (1 + t.min_deviation_pct / 100) * expected
        if (beyond or runs_high) and abs(actual - usual) <= 0.25 * max(usual, 1e-9):
            return None
    detectors = [band]
    z = robust_z(actual, same_weekday_history)
    if z is not None:
        if abs(z) < t.min_robust_z or np.sign(z) != np.sign(impact):
            return None
        detectors.append("robust_zscore")
    return Score(
        direction="spike" if impact > 0 else "drop",
        impact_usd=impact,
        deviation_pct=dev,
        robust_z=z,
        severity=severity(impact, dev, t),
        detectors=tuple(detectors),
    )


def same_weekday_history(series: pd.Series, period: date, weeks: int = 8) -> np.ndarray:
    """The series' values at the same point of the week (the same weekday; for an hour, the same
    hour of the same weekday) in the ``weeks`` weeks before ``period`` (missing: 0), counted only
    from the series' first period."""
    if series.empty:
        return np.array([])
    first = series.index.min()
    periods = [p for p in (period - timedelta(days=7 * k) for k in range(1, weeks + 1)) if p >= first]
    return series.reindex(periods, fill_value=0.0).to_numpy(dtype=float)


def same_day_of_month_history(series: pd.Series, period: date, months: int = 3) -> np.ndarray:
    """The series' values on the same day (and hour) of the ``months`` months before ``period``,
    counted only from the series' first period (the 31st falls back to the month's last day)."""
    if series.empty:
        return np.array([])
    first = series.index.min()
    periods = [p for p in (period - relativedelta(months=k) for k in range(1, months + 1)) if p >= first]
    return series.reindex(periods, fill_value=0.0).to_numpy(dtype=float)


def top_contributors(current: pd.Series, baseline: pd.Series, n: int = 3, dimension: str = "") -> list[dict]:
    """The ``n`` items (a region, a resource, a service…) that moved the most, by the size of the
    change, each with actual, expected and delta. ``current`` and ``baseline`` are indexed by item."""
    frame = pd.DataFrame({"actual": current, "expected": baseline}).fillna(0.0)
    frame["delta"] = frame["actual"] - frame["expected"]
    frame = frame.reindex(frame["delta"].abs().sort_values(ascending=False, kind="stable").index)
    return [
        {
            "dimension": dimension,
            "name": str(name),
            "actual": round(float(row.actual), 2),
            "expected": round(float(row.expected), 2),
            "delta": round(float(row.delta), 2),
        }
        for name, row in frame.head(n).iterrows()
    ]
