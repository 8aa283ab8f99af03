"""Rules for what the forecast bands miss, each a pure function over a series' history.

A band learns from the series itself: a brand-new series has no band, a slow ramp drags the band
up with it, a new SKU that replaces an old one looks like nothing at all. Each rule yields a
``Hit``; the detection pass adds its name to the row of a period the band flagged already, or
makes the row when it did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from finops_pipeline.detection.calibration import span_read_whole, span_without_extreme
from finops_pipeline.detection.forecasting import row_medians
from finops_pipeline.detection.scoring import Costs, Thresholds, deviation_pct, relative_noise, robust_z

__all__ = ["Costs", "Hit", "level_shift", "new_series", "new_skus", "no_line_items", "slow_ramp", "unusual_span",
           "weekend_like_weekday"]


@dataclass(frozen=True)
class Hit:
    rule: str
    series_key: str
    period: date
    actual: float
    expected: float  # what the period would have cost without what the rule saw
    lower: float
    upper: float
    note: str = ""  # what the rule saw, e.g. the new SKU's id

    def passes(self, t: Thresholds) -> bool:
        impact = self.actual - self.expected
        return abs(impact) >= t.min_impact_usd and abs(deviation_pct(self.actual, self.expected)) >= t.min_deviation_pct


def new_series(history: dict[str, pd.Series], periods: Iterable, min_history_days: int, t: Thresholds) -> Iterator[Hit]:
    """A series in its first ``t.new_series_days`` (and too young for a forecast) spending at least
    the $ floor, on a bill older than ``min_history_days``: a new service or account that arrives
    with real spend is news, not a baseline. One that grows into it over weeks is an adoption,
    which its forecast takes over once it has the history."""
    if not history:
        return
    bill_start = min(values.index.min() for values in history.values() if len(values))
    for key, values in sorted(history.items()):
        if key == "total" or values.empty:
            continue
        first = values.index.min()
        if first - bill_start < timedelta(days=min_history_days):
            continue  # there since the bill began: not new
        young = timedelta(days=min(t.new_series_days, min_history_days))
        for period in sorted(p for p in periods if first <= p < first + young):
            cost = float(values.get(period, 0.0))
            if cost >= t.min_impact_usd:
                yield Hit("new_series", key, period, cost, 0.0, 0.0, 0.0)


def new_skus(skus: pd.DataFrame, history: dict[str, pd.Series], expected: dict, t: Thresholds) -> Iterator[Hit]:
    """A SKU in its first weeks on a series (``skus``: series_key, period, sku_id, cost) that
    spends at least the $ floor and makes the series cost more than expected: a new instance
    family, a new storage tier. A SKU that merely replaces another (a generation upgrade) leaves
    the series at its expected cost and is not news; the excess counted is the smaller of the two.
    A series without a forecast yet is new itself, every SKU of it too: ``new_series`` judges it."""
    for s in skus.sort_values(["series_key", "period", "sku_id"]).itertuples(index=False):
        baseline = expected.get((s.series_key, s.period))
        if s.series_key not in history or s.cost < t.min_impact_usd or baseline is None:
            continue
        actual = float(history[s.series_key].get(s.period, 0.0))
        excess = min(s.cost, actual - baseline)
        hit = Hit("new_sku", s.series_key, s.period, actual, actual - excess, actual - excess, actual - excess, s.sku_id)
        if hit.passes(t):
            yield hit


def _steady(costs: Costs, last_day: date, weeks: int, tolerance: float = 0.15) -> bool:
    """Whether none of the ``weeks`` weeks up to ``last_day`` cost more than ``tolerance`` off
    their median (and they cost something): not growing, not new."""
    totals = [costs.at(last_day - timedelta(days=7 * k + i) for i in range(7)).sum() for k in range(weeks)]
    level = float(np.median(totals))
    return level > 0 and max(abs(w - level) for w in totals) <= tolerance * level


def slow_ramp(costs: Costs, period: date, t: Thresholds) -> Hit | None:
    """A series that was steady, and for the last two weeks has cost more each day than on the
    same weekday the week before: storage growing a few % a day. Each day is a small step the
    band follows; the rule compares with the level before the climb (the same weekday five to
    eight weeks back). Daily series only."""
    if costs.first is None or period - costs.first < timedelta(days=63):
        return None
    days = [period - timedelta(days=i) for i in range(14)]
    now = costs.at(days)
    before = costs.at(d - timedelta(days=7) for d in days)
    if (before <= 0).any():
        return None
    ratios = now / before
    if (ratios > 1.0).sum() < 12 or np.median(ratios) < 1.04:
        return None
    # Steady before the climb, weeks five to eight back. A new service being adopted grows from
    # its first day and is never steady first.
    if not _steady(costs, period - timedelta(days=35), weeks=4):
        return None
    base = costs.same_weekday(period, range(5, 9))
    hit = Hit("slow_ramp", costs.key, period, float(now[0]), float(np.median(base)), float(base.min()), float(base.max()))
    return hit if hit.actual > hit.expected and hit.passes(t) else None


def level_shift(costs: Costs, period: date, t: Thresholds, weeks: int = 4) -> Hit | None:
    """A steady series that stepped up and stayed there: at least six of the last seven days
    above their own weekday's median over the ``weeks`` weeks before the step, by a median of
    at least ``t.level_shift_sigmas`` standard errors of such a median (from the series' own day-to-day
    noise, ``relative_noise``). Day by day a 40 % step on a series that swings 15 % stays inside
    its band; over a week it is many standard errors. A rise only: spending less for a week is a
    holiday or a saving, and a stop is the band's to see. Daily series only."""
    if costs.first is None or period - costs.first < timedelta(days=7 * (weeks + 8)):
        return None
    # Newest first: the week, then the weeks before it; day i of the week has its weekday at
    # i + 7, i + 14, ...
    span = costs.at(period - timedelta(days=i) for i in range(7 * (weeks + 1)))
    actual = span[:7]
    base = row_medians(span[np.arange(7)[:, None] + 7 * np.arange(1, weeks + 1)[None, :]])
    if (base <= 0).any() or actual[0] <= base[0] or (actual > base).sum() < 6:
        return None
    # Cheap tests first: most series-days fail one of them.
    if not Hit("level_shift", costs.key, period, float(actual[0]), float(base[0]), 0.0, 0.0).passes(t):
        return None
    week_start = period - timedelta(days=6)
    if not _steady(costs, week_start - timedelta(days=1), weeks):
        return None
    noise = relative_noise(costs, week_start)
    if noise is None:
        return None
    # The median of n log-ratios has a standard error of about 1.2533·σ/√n.
    shift = float(np.median(np.log(np.maximum(actual, 1e-9) / base)))
    if shift / (1.2533 * noise / np.sqrt(7)) < t.level_shift_sigmas:
        return None
    same = span[7::7]
    return Hit("level_shift", costs.key, period, float(actual[0]), float(base[0]), float(same.min()), float(same.max()))


def weekend_like_weekday(costs: Costs, period: date, t: Thresholds) -> Hit | None:
    """A Saturday or Sunday billed like a weekday on a series whose weekends normally cost at most
    half (dev and staging shut down): the shutdown job did not run. Daily series only."""
    if period.weekday() < 5 or costs.first is None or period - costs.first < timedelta(days=28):
        return None
    weekends = costs.same_weekday(period, range(1, 5))
    weekdays = costs.at(d for d in (period - timedelta(days=i) for i in range(1, 29)) if d.weekday() < 5)
    weekend, weekday = float(np.median(weekends)), float(np.median(weekdays))
    actual = costs.get(period)
    if weekday <= 0 or weekend > 0.5 * weekday or actual < 0.8 * weekday:
        return None
    # A noisy series reaches its weekday level now and then; it must also stand out from its own
    # weekend days.
    z = robust_z(actual, costs.same_weekday(period, range(1, 9)))
    if z is None or z < t.min_robust_z:
        return None
    hit = Hit("weekend_like_weekday", costs.key, period, actual, weekend, float(weekends.min()), float(weekends.max()))
    return hit if hit.passes(t) else None


def span_beyond(costs_span: pd.Series, span_expected: float, span_range: tuple[float, float],
                profile: str | None = None) -> bool:
    """Whether a span's cost is outside its calibrated ``span_range``, read as it was calibrated
    (``calibration.span_read_whole``): without its most unusual period, which pages (or not) on
    its own, but whole on a job series."""
    total, (lower, upper) = costs_span.sum(), span_range
    if span_read_whole(profile):
        above = below = total
    else:
        above, below = span_without_extreme(total, span_expected, costs_span.max(), costs_span.min(), len(costs_span))
    if total > span_expected:
        return not pd.isna(upper) and above > upper
    return not pd.isna(lower) and below < lower


def unusual_span(costs: Costs, period, step, span: int, expected: float, band: tuple[float, float],
                 span_expected: float, span_range: tuple[float, float], t: Thresholds,
                 jobs: tuple[float, float] = (np.nan, np.nan), profile: str | None = None) -> Hit | None:
    """The ``span`` periods ending at ``period`` (a week of days) cost outside their calibrated
    ``span_range`` (see ``calibration``) even without their single most unusual period, and this
    period is off its ``expected`` in the same direction: jobs that run every day, a service a
    third dearer for a week, each period ordinary on its own. On an intermittent series, ``jobs``
    (the cost that makes a period a job, and the number of job periods in a span that is not the
    series' habit) also makes a span unusual: jobs every day. The span's excess must clear the $
    and % floors, the period's own deviation the % floor; the hit is the period's own cost against
    its own forecast and ``band``."""
    if pd.isna(span_expected):
        return None
    costs_span = costs.at(period - i * step for i in range(span))
    total = costs_span.sum()
    beyond = span_beyond(costs_span, span_expected, span_range, profile)
    actual = costs.get(period)
    job_cost, job_limit = jobs
    if not pd.isna(job_limit) and not pd.isna(job_cost) and actual > job_cost and (costs_span > job_cost).sum() >= job_limit:
        beyond = beyond or total > span_expected
    if not beyond or (actual - expected) * (total - span_expected) <= 0:
        return None
    if abs(deviation_pct(actual, expected)) < t.min_deviation_pct:  # this period is not part of it
        return None
    if abs(total - span_expected) < t.min_impact_usd or abs(deviation_pct(total, span_expected)) < t.min_deviation_pct:
        return None
    return Hit("unusual_span", costs.key, period, actual, expected, *band,
               f"{span} periods: {total:,.2f} against {span_expected:,.2f} expected")


def no_line_items(costs: Costs, period, step, expected: float, rest_arrives: bool, regular: int = 7) -> Hit | None:
    """A data gap: the series has no line item in ``period`` while the rest of its bill arrives
    (``rest_arrives``: its provider has line items then; for a provider, another provider has),
    and it had line items in each of the ``regular`` periods before its gap began, and a forecast
    above zero: a lost export or a broken integration, not a series that ended. A service that
    merely cost less still has line items."""
    if not rest_arrives or expected <= 0 or costs.first is None or costs.has(period):
        return None
    last = costs.last_before(period)
    if last is None or not all(costs.has(last - i * step) for i in range(regular)):
        return None
    return Hit("no_line_items", costs.key, period, 0.0, expected, 0.0, 0.0, f"no line items since {last + step}")
