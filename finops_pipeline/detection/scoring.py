"""Deciding whether a day's cost is an anomaly, how bad it is, and what drove it.

Statistics only: the forecast band says the value is unusual, a robust z-score against the same
weekday confirms it is not just a noisy series, and dollar and percentage floors keep alerts to
what is worth a person's time.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta

from finops_pipeline.detection.forecasting import row_medians
from finops_pipeline.grain import GRAINS

SEVERITIES = ("info", "warning", "critical")


class Costs:
    """One series' cost per period, for the rules and the scoring: each looks up a few dozen
    periods for every series and period scored, where pandas' reindex would cost more than the
    rest of detection."""

    def __init__(self, values: pd.Series):
        self.key = values.name or ""
        self.first = values.index.min() if len(values) else None
        self._by_period = values.to_dict()
        self._sorted: list | None = None

    def get(self, period) -> float:
        return float(self._by_period.get(period, 0.0))

    def has(self, period) -> bool:
        """Whether the series had a line item in ``period`` (not merely cost 0)."""
        return period in self._by_period

    def last_before(self, period):
        """The last period before ``period`` with a line item; None if none."""
        if self._sorted is None:
            self._sorted = sorted(self._by_period)
        i = bisect.bisect_left(self._sorted, period)
        return self._sorted[i - 1] if i else None

    def at(self, periods: Iterable) -> np.ndarray:
        """The costs of ``periods`` (0 where there was none)."""
        return np.array([self._by_period.get(p, 0.0) for p in periods], dtype=float)

    def same_weekday(self, period, weeks: Iterable[int]) -> np.ndarray:
        return self.at(period - timedelta(days=7 * k) for k in weeks)


def _costs(values) -> Costs:
    return values if isinstance(values, Costs) else Costs(values)


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
    # A change pages someone only when it is at least this many of the series' own robust
    # standard deviations (of the log of its day-to-day noise, ``relative_noise``): on a batch
    # service whose days swing by 25 %, doubling for a day is a bad day, not news; a stop (cost 0)
    # always passes. Daily series; 0 turns it off.
    alert_noise_sigmas: float = 3.0
    # The warning $ floor for what a rule with a cause of its own found (``CAUSED_RULES``: a SKU the
    # series never billed, a weekend shutdown that did not happen): the cause is the evidence that
    # a smaller excess is news.
    caused_warning_impact_usd: float = 150.0
    # A step up a week long (``rules.level_shift``) needs its median day this many standard errors
    # above the level before it: over a week, with six of seven days up, 3 is rare by chance.
    level_shift_sigmas: float = 3.0
    # An incident of at least this many periods is also judged on what it costs in all: its summed
    # excess against the incident floors below (USD, whatever the grain) and its summed expected
    # cost against the % floors, so a shift of $60 a day pages once it has cost $250. Three
    # periods: chosen on the tuning bill (two let pairs of noisy days page).
    incident_min_periods: int = 3
    incident_warning_total: float = 250.0
    incident_critical_total: float = 2000.0
    # The % floors of an incident's totals (its summed excess over its summed expected cost): a
    # third more for days is news when it adds up to $250. The tuning bill does not tell 20 to 50
    # apart (its anomalies are all large); 30 was chosen with the second bill in view.
    incident_warning_pct: float = 30.0
    incident_critical_pct: float = 100.0
    # A data gap (a series without line items while the rest of its bill arrives) pages, as a
    # warning to the pipeline's owner, once it has lasted this many periods.
    data_gap_periods: int = 2
    # A new series (``rules.new_series``) is news in its first week: a service that arrives
    # spending. One adopted over weeks reaches the floor later, and is a baseline, not news.
    new_series_days: int = 7
    # AI API spend (``ai_rules``): each ratio against its median over this many periods before; $ per
    # token this % above it; a cached share of input that fell to this part of a median of at least
    # ai_cache_min_share; a request costing this many times its median (seed 004's threshold).
    ai_baseline_periods: int = 28
    ai_unit_cost_rise_pct: float = 25.0
    ai_cache_min_share: float = 0.2
    ai_cache_drop_share: float = 0.5
    ai_cost_per_request_factor: float = 2.0
    # A runaway API key (``ai_rules.runaway_key``): its requests (or, without request counts, its
    # tokens) this many times their median at the same point of the week, a retry loop or a leaked key.
    ai_runaway_factor: float = 3.0
    # An idle GPU (``ai_rules.idle_gpus``): idle (below the source's utilisation floor) for a streak of
    # this many minutes; it pages when a series' idle GPUs together burn at least this many USD an
    # hour (utilisation is measured, not inferred: what needs deciding is whether the money matters).
    gpu_idle_minutes: int = 30
    gpu_idle_usd_an_hour: float = 2.0

    @classmethod
    def for_granularity(cls, granularity: str) -> Thresholds:
        """The defaults are per day; a period's dollar floors are its share of them (an hour: a
        24th), and ``GRAIN_OVERRIDES`` what else differs."""
        base, per_day = cls(), GRAINS[granularity].periods_per_day
        return cls(**{f: round(getattr(base, f) / per_day, 2) if f.endswith("_usd") else getattr(base, f)
                      for f in base.__dataclass_fields__} | GRAIN_OVERRIDES.get(granularity, {}))


# Per grain, what is not a share of the daily defaults. Hourly: a few hours without rows are a
# late export or a missed scrape, routine in hourly feeds; a quarter of a day is a data gap.
GRAIN_OVERRIDES = {"hourly": {"data_gap_periods": 6}}


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


# Rules whose find names its own cause, in the bill itself, rather than only a value out of line.
CAUSED_RULES = ("new_sku", "weekend_like_weekday", "unit_cost_rise", "cache_collapse", "cost_per_request", "runaway_key",
                "idle_gpu")
# The AI rules (``ai_rules``) compare a ratio with its own median; the series' cost noise is not
# their evidence, so the noise gate does not apply to them.
AI_RULES = ("unit_cost_rise", "cache_collapse", "cost_per_request", "runaway_key", "idle_gpu")
# Rules whose whole excess is waste (an idle GPU's cost): it pages at its own floor, not as a
# share of the series' cost.
WASTE_RULES = ("idle_gpu",)


def severity(impact_usd: float, deviation: float, t: Thresholds, noise_sigmas: float | None = None,
             caused: bool = False) -> str:
    """Both floors of a level, or the dollar floor of the level above alone: a $5,000 overrun on a
    large bill matters even when it is only 30 % of the day. A drop of less than
    ``alert_drop_pct`` stays info, and so does a change of fewer than ``alert_noise_sigmas`` of the
    series' own noise (``noise_sigmas``: the change in those units; None when unknown). ``caused``:
    a rule of ``CAUSED_RULES`` found it, whose warning $ floor is ``caused_warning_impact_usd``."""
    impact, dev = abs(impact_usd), abs(deviation)
    if impact_usd < 0 and dev < t.alert_drop_pct:
        return "info"
    if noise_sigmas is not None and t.alert_noise_sigmas and abs(noise_sigmas) < t.alert_noise_sigmas:
        return "info"
    if (impact >= t.critical_impact_usd and dev >= t.critical_deviation_pct) or impact >= 5 * t.critical_impact_usd:
        return "critical"
    warning_usd = min(t.warning_impact_usd, t.caused_warning_impact_usd) if caused else t.warning_impact_usd
    if (impact >= warning_usd and dev >= t.warning_deviation_pct) or impact >= t.critical_impact_usd:
        return "warning"
    return "info"


def incident_severity(total_excess_usd: float, total_expected_usd: float, periods: int, t: Thresholds) -> str:
    """The severity an incident earns by its totals (``Thresholds.incident_min_periods`` and the
    incident floors): a drop only when at least ``alert_drop_pct`` of what was expected is gone."""
    if periods < t.incident_min_periods:
        return "info"
    impact = abs(total_excess_usd)
    dev = 100.0 * impact / total_expected_usd if total_expected_usd > 0 else 999.0
    if total_excess_usd < 0 and dev < t.alert_drop_pct:
        return "info"
    if impact >= t.incident_critical_total and dev >= t.incident_critical_pct:
        return "critical"
    if impact >= t.incident_warning_total and dev >= t.incident_warning_pct:
        return "warning"
    return "info"


def noise_sigmas(actual: float, expected: float, noise: float | None) -> float | None:
    """How many of the series' robust standard deviations ``noise`` (on the log scale) ``actual``
    is from ``expected``; None when either is unknown. A period that costs nothing is infinitely
    far below: a service that stopped is never noise."""
    if noise is None or expected <= 0:
        return None
    if actual <= 0:
        return -np.inf
    return float(np.log(actual / expected) / noise)


def alert_sigmas(actual: float, expected: float, noise: float | None, day_factor: float | None, t: Thresholds
                 ) -> float | None:
    """``noise_sigmas`` of a period against what it would usually cost: ``expected``, or, for a
    rise on a day of the month the series habitually runs high on (``day_factor``, its
    ``day_of_month_factor``, at least the % floor over its weekday: month-start batch jobs),
    ``expected`` times that factor."""
    if actual > expected and day_factor is not None and day_factor >= 1 + t.min_deviation_pct / 100:
        expected *= day_factor
    return noise_sigmas(actual, expected, noise)


def relative_noise(values: pd.Series | Costs, period, weeks: int = 8, season: timedelta = timedelta(days=7),
                   step: timedelta = timedelta(days=1), min_points: int = 14) -> float | None:
    """The series' day-to-day noise before ``period``: 1.4826·MAD of log(value / the median of the
    same point of the week over the ``weeks`` weeks before it), over each period of the ``weeks``
    weeks before ``period`` (those with cost, and a median from at least four weeks). A robust
    standard deviation of the log: a multiplicative noise, read the same on a $50 and a $5,000
    series, pooled over every weekday so that it rests on dozens of points, not eight. None with
    fewer than ``min_points`` residuals. Floored at 2 %."""
    costs = _costs(values)
    if costs.first is None:
        return None
    per_season = int(season / step)
    n = weeks * per_season  # the periods whose residuals are pooled, each with ``weeks`` seasons before it
    span = [period - (2 * n - i) * step for i in range(2 * n)]  # oldest first, up to the period before
    x = costs.at(span)
    x[np.array([p < costs.first for p in span])] = np.nan  # before the series began: unknown, not zero
    prior = x[np.arange(n, 2 * n)[:, None] - per_season * np.arange(1, weeks + 1)[None, :]]
    median = row_medians(prior)
    now = x[n:]
    ok = ((~np.isnan(prior)).sum(axis=1) >= 4) & (median > 0) & (now > 0)
    if ok.sum() < min_points:
        return None
    residuals = np.log(now[ok] / median[ok])
    mad = 1.4826 * float(np.median(np.abs(residuals - np.median(residuals))))
    return max(mad, 0.02)


def day_of_month_factor(values: pd.Series | Costs, period, months: int = 3, weeks: int = 8) -> float | None:
    """How the series' cost on this day of the month (the 31st: the month's last day) usually
    compares with its same weekday: the median, over the ``months`` months before ``period``, of
    that day's cost over the median of the same weekday in the ``weeks`` weeks before it. Month-start
    batch jobs make it 1.5 on the 1st, whatever weekday the 1st falls on; the raw same-day values
    miss that when last month's 1st was a Saturday. None without all ``months`` months of history."""
    costs = _costs(values)
    if costs.first is None:
        return None
    ratios = []
    for k in range(1, months + 1):
        day = period - relativedelta(months=k)
        before = [d for d in (day - timedelta(days=7 * j) for j in range(1, weeks + 1)) if d >= costs.first]
        if len(before) < 4:
            return None
        usual = float(np.median(costs.at(before)))
        if usual <= 0:
            return None
        ratios.append(costs.get(day) / usual)
    return float(np.median(ratios))


def score(
    actual: float,
    expected: float,
    lower: float,
    upper: float,
    same_weekday_history: np.ndarray,
    t: Thresholds = Thresholds(),
    band: str = "prophet_interval",
    same_day_of_month: np.ndarray | None = None,
    noise: float | None = None,
    day_factor: float | None = None,
    alert_bounds: tuple[float, float] | None = None,
    job_upper: float | None = None,
) -> Score | None:
    """Score one period of one series against its ``band`` (the model that drew it); None when it
    is not an anomaly. To page anyone a change must leave ``alert_bounds``, the series' calibrated
    range (``calibration``; or, on an intermittent series, be a job above ``job_upper``), or,
    without one, stand out from ``noise``, its ``relative_noise``;
    ``day_factor``: its ``day_of_month_factor`` (see ``alert_sigmas``)."""
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
    if within_calibration(actual, expected, alert_bounds, day_factor, t, job_upper):
        level = "info"
    else:
        sigmas = None if calibrated(alert_bounds) else alert_sigmas(actual, expected, noise, day_factor, t)
        level = severity(impact, dev, t, sigmas)
    return Score(
        direction="spike" if impact > 0 else "drop",
        impact_usd=impact,
        deviation_pct=dev,
        robust_z=z,
        severity=level,
        detectors=tuple(detectors),
    )


def calibrated(bounds: tuple[float, float] | None) -> bool:
    return bounds is not None and not any(pd.isna(b) for b in bounds)


def within_calibration(actual: float, expected: float, bounds: tuple[float, float] | None, day_factor: float | None,
                       t: Thresholds, job_upper: float | None = None) -> bool:
    """Whether ``actual`` is within the series' calibrated ``bounds`` (lower, upper); the upper one
    scaled by ``day_factor`` on a day of the month the series habitually runs high on (as in
    ``alert_sigmas``). False without bounds, and on an intermittent series for a job above its
    calibrated size (``job_upper``)."""
    if not calibrated(bounds):
        return False
    if job_upper is not None and not pd.isna(job_upper) and actual > job_upper:
        return False
    lower, upper = bounds
    if actual > expected and day_factor is not None and day_factor >= 1 + t.min_deviation_pct / 100:
        upper *= day_factor
    return lower <= actual <= upper


def same_weekday_history(series: pd.Series | Costs, period: date, weeks: int = 8) -> np.ndarray:
    """The series' values at the same point of the week (the same weekday; for an hour, the same
    hour of the same weekday) in the ``weeks`` weeks before ``period`` (missing: 0), counted only
    from the series' first period."""
    costs = _costs(series)
    if costs.first is None:
        return np.array([])
    return costs.at(p for p in (period - timedelta(days=7 * k) for k in range(1, weeks + 1)) if p >= costs.first)


def same_day_of_month_history(series: pd.Series | Costs, period: date, months: int = 3) -> np.ndarray:
    """The series' values on the same day (and hour) of the ``months`` months before ``period``,
    counted only from the series' first period (the 31st falls back to the month's last day)."""
    costs = _costs(series)
    if costs.first is None:
        return np.array([])
    return costs.at(p for p in (period - relativedelta(months=k) for k in range(1, months + 1)) if p >= costs.first)


def top_contributors(current: pd.Series, baseline: pd.Series, n: int = 3, dimension: str = "") -> list[dict]:
    """The ``n`` items (a region, a resource, a service…) that moved the most, by the size of the
    change, each with actual, expected and delta. ``current`` and ``baseline`` are indexed by item."""
    return top_contributors_by(pd.concat({0: current}), pd.concat({0: baseline}), n, dimension).get(0, [])


def top_contributors_by(current: pd.Series, baseline: pd.Series, n: int = 3, dimension: str = "") -> dict[object, list[dict]]:
    """``top_contributors`` for many anomalies at once: ``current`` and ``baseline`` are indexed by
    (anomaly, item); returns each anomaly's list. Ties go to the first item by name."""
    frame = pd.DataFrame({"actual": current, "expected": baseline}).fillna(0.0)
    if frame.empty:
        return {}
    frame["delta"] = frame["actual"] - frame["expected"]
    frame["magnitude"] = frame["delta"].abs()
    frame = frame.rename_axis(["group", "name"]).reset_index()
    frame = frame.sort_values(["group", "magnitude", "name"], ascending=[True, False, True], kind="stable")
    out: dict[object, list[dict]] = {}
    for row in frame.groupby("group", sort=False).head(n).itertuples(index=False):
        out.setdefault(row.group, []).append({
            "dimension": dimension,
            "name": str(row.name),
            "actual": round(float(row.actual), 2),
            "expected": round(float(row.expected), 2),
            "delta": round(float(row.delta), 2),
        })
    return out
