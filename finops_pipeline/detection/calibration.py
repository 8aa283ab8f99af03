"""How unusual a period is for its own series: alert bounds calibrated on the series' own errors.

A band drawn from a noise model (Prophet's Gaussian noise, the weekday median's MAD) is wrong in
the tail on heavy-tailed and intermittent series: a training run or a batch job is a "6 σ" day
every few weeks. Here each series is judged by the errors its own model made out of sample: the
horizon-0 forecasts of the ``days`` before a period (each made without the day it forecast, as
the forecasts are rolling-origin) against what those days cost, as log ratios
``log((actual + c) / (expected + c))``, with ``c`` 5 % of the series' usual cost so that a
zero on a near-idle series is a finite step.

Each residual is taken less the median of the week of residuals up to it: a spike keeps its
size, a change that lasts only its first days, so a past incident does not pass for noise. The
bound is the residual its series exceeds once in ``1 / rate`` periods: its ``k`` largest
residuals (``tail_share``, at least five) are a peaks-over-threshold sample, the tail beyond the
threshold a generalized Pareto one, its scale from the *median* excess and its shape from
Pickands' order statistics (held to ``max_tail_shape``; exponential on job series), both
unmoved by a few past outliers at the top. ``rate`` follows from a setting a user can read: how
many false pages a series may raise a year.

The same is done for the sum of the last ``span`` periods (a week of days, a day of hours), and
for an intermittent series' job periods alone (``job_upper``): jobs that run every day, or each
several times their size, are not the series' habit.

Each series also gets a profile, to say in words what kind of series it is: ``sparse`` (cost on
under a third of its periods), ``intermittent`` (idle on at least a third, the rest jobs),
``bursty`` (a day at twice the expected cost is within its once-a-year range), ``weekly``
(weekends differ by a quarter or more; daily series) or ``steady``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import math
import warnings

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from finops_pipeline.detection.forecasting import row_medians
from finops_pipeline.grain import GRAINS, Grain

PROFILES = ("steady", "weekly", "bursty", "intermittent", "sparse")
CALIBRATION_COLUMNS = ["profile", "alert_lower", "alert_upper", "span_expected", "span_alert_lower", "span_alert_upper",
                       "active_cost", "span_active_limit", "job_upper"]


@dataclass(frozen=True)
class Calibration:
    days: int = 182  # the errors a bound is calibrated on: the periods of these days before it
    false_pages_per_year: float = 0.5  # per series and direction: one false page per series per two years
    min_residuals_days: int = 56  # fewer days of errors than this: no bound (the noise gate decides)
    tail_share: float = 0.3  # the largest residuals that make the tail sample (chosen on the tuning bill)
    max_tail_shape: float = 0.25  # a heavier than exponential tail where the errors show one (not on job series)
    offset_share: float = 0.05  # c, as a share of the series' mean expected cost
    span_days: float = 7.0  # the sum's span: a week (an hourly series: see ``for_granularity``)
    # Whether a job lasts many periods (a training run of twenty hours): then the job periods of a
    # span are runs, not the independent draws a binomial count expects, and a span is not
    # unusual for holding no more job periods than the window's busiest span did.
    jobs_in_runs: bool = False

    @classmethod
    def for_granularity(cls, granularity: str, **overrides) -> Calibration:
        """Hours: four weeks of errors (a fit sees six), a day's sum, and jobs that run for hours."""
        hourly = {} if granularity == "daily" else {"days": 28, "min_residuals_days": 14, "span_days": 1.0,
                                                    "jobs_in_runs": True}
        return cls(**{**hourly, **overrides})

    def span(self, grain: Grain) -> int:
        """The span's length in ``grain``'s periods."""
        return max(int(round(self.span_days * grain.periods_per_day)), 1)

    def lookback(self) -> timedelta:
        """How far before a window the forecasts it is calibrated on go."""
        return timedelta(days=self.days + self.span_days)


def tail_quantile(residuals: np.ndarray, rate: float | np.ndarray, tail_share: float = 0.2,
                  max_shape: float | np.ndarray = 0.0) -> np.ndarray:
    """For each row of ``residuals`` (NaN: none), the value exceeded with probability ``rate`` (one,
    or one per row): a generalized Pareto tail fitted beyond its ``k`` largest values
    (``tail_share`` of the row, at least five), its scale from their median excess, which one
    past incident among them does not move. Its shape is 0 (an exponential tail) unless
    ``max_shape`` allows more (per row, or for all): then it is Pickands' estimate, held to
    [0, ``max_shape``]. NaN for a row of fewer than 20 values."""
    n = (~np.isnan(residuals)).sum(axis=1)
    x = np.sort(np.where(np.isnan(residuals), -np.inf, residuals), axis=1)[:, ::-1]  # largest first
    k = np.maximum(np.round(tail_share * n).astype(int), 5)
    rows = np.arange(len(x))
    threshold = x[rows, np.minimum(k, x.shape[1] - 1)]  # the (k+1)-th largest
    cols = np.arange(x.shape[1])[None, :]
    excess = np.where((cols < k[:, None]) & np.isfinite(x), x - threshold[:, None], np.nan)
    # Pickands' estimator from the (k/4)-th, (k/2)-th and k-th largest: order statistics, so the
    # first days of a past incident, at the very top, do not make the tail look heavy.
    quarter = np.maximum(k // 4, 1)
    top, mid, low = (x[rows, np.minimum(m * quarter - 1, x.shape[1] - 1)] for m in (1, 2, 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.log((top - mid) / (mid - low)) / np.log(2)
    shape = np.clip(np.nan_to_num(shape, nan=0.0, posinf=0.0, neginf=0.0), 0.0, max_shape)
    shape = np.where(shape > 1e-6, shape, 0.0)
    safe = np.maximum(shape, 1e-6)
    # The median excess of a generalized Pareto tail is scale · (2^shape − 1) / shape (ln 2 at 0).
    scale = np.maximum(row_medians(excess), 0.0) / np.where(shape > 0, (2.0 ** shape - 1.0) / safe, np.log(2))
    odds = np.maximum(k / np.maximum(n, 1) / rate, 1.0)
    growth = np.where(shape > 0, (odds ** shape - 1.0) / safe, np.log(odds))
    return np.where(n >= 20, threshold + scale * growth, np.nan)


def active_limit(p: np.ndarray, span: int, rate: float) -> np.ndarray:
    """For each active share ``p``, the fewest active periods out of ``span`` whose binomial tail
    probability is at most ``rate``: jobs on more periods than that are not the series' habit.
    NaN when even all ``span`` are more likely than that."""
    k = np.arange(span + 1)
    comb = np.array([math.comb(span, i) for i in k], dtype=float)
    pmf = comb[None, :] * p[:, None] ** k[None, :] * (1 - p[:, None]) ** (span - k)[None, :]
    tail = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(X >= k)
    ok = tail <= rate
    return np.where(ok.any(axis=1), np.argmax(ok, axis=1), np.nan)


def row_quantiles(x: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each row, ignoring NaN (NaN for a row of NaN), linear as numpy's:
    np.nanquantile goes row by row."""
    x = np.sort(x, axis=1)  # NaN sorts last
    n = (~np.isnan(x)).sum(axis=1)
    position = q * np.maximum(n - 1, 0)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, np.maximum(n - 1, 0))
    rows = np.arange(len(x))
    low, high = x[rows, below], x[rows, above]
    return np.where(n > 0, low + (high - low) * (position - below), np.nan)


def _profiles(actual: np.ndarray, weekend: np.ndarray | None, idle_share: np.ndarray, upper_ratio: np.ndarray
              ) -> np.ndarray:
    """Each row's profile (see the module docstring): ``actual`` the costs of its window (NaN:
    not forecast), ``weekend`` which of them fall on a weekend."""
    known = ~np.isnan(actual)
    with np.errstate(invalid="ignore", divide="ignore"):
        billed = np.where(known, actual > 0, False).sum(axis=1) / np.maximum(known.sum(axis=1), 1)
        weekly = np.zeros(len(actual), dtype=bool)
        if weekend is not None:
            days = row_medians(np.where(weekend, np.nan, actual))
            ends = row_medians(np.where(weekend, actual, np.nan))
            ratio = ends / days
            weekly = (days > 0) & ((ratio < 0.75) | (ratio > 1.33))
    profile = np.full(len(actual), "steady", dtype=object)
    profile[weekly] = "weekly"
    profile[np.isfinite(upper_ratio) & (upper_ratio >= 2.0)] = "bursty"
    profile[idle_share >= 1 / 3] = "intermittent"
    profile[(billed < 1 / 3) & (known.sum(axis=1) > 0)] = "sparse"
    return profile


JOB_PROFILES = ("intermittent", "sparse")  # series of jobs and idle periods


def span_read_whole(profile) -> np.ndarray:
    """Whether the span of a series of ``profile`` (one, or an array) is read whole rather than
    ``span_without_extreme``: a job series' span is its jobs, none of them an outlier to drop
    (their count and their size have bounds of their own)."""
    return np.isin(np.asarray(profile, dtype=object), JOB_PROFILES)


def span_without_extreme(total, expected, largest, smallest, span: int):
    """A span's cost without its single most unusual period, each way: (its total less the largest
    period's excess over the span's mean expected period, its total plus the smallest period's
    shortfall). A one-period spike or stop is judged by its period's own bound; a span is
    unusual when the rest of it is too."""
    usual = expected / span
    return total - np.maximum(largest - usual, 0.0), total + np.maximum(usual - smallest, 0.0)


def _windows(values: np.ndarray, span: int, how) -> np.ndarray:
    """``how`` (np.sum, np.max...) of each ``span`` values ending at each position; NaN before."""
    return np.concatenate([np.full(span - 1, np.nan), how(sliding_window_view(values, span), axis=1)])


def calibrate(history: Mapping[str, pd.Series], forecasts: pd.DataFrame, periods: Iterable, granularity: str = "daily",
              config: Calibration = Calibration()) -> pd.DataFrame:
    """The alert bounds and profile of each series in each of ``periods``: ``series_key,
    target_period`` and ``CALIBRATION_COLUMNS``; the bounds in dollars, for the period's cost
    and for the sum of the ``span`` periods ending at it, NaN without enough errors to go on.
    ``span_expected`` is the expected cost of the span (NaN where a period of it has no forecast).
    ``forecasts``: horizon-0 forecasts (``series_key, target_period, expected_cost``) of the
    periods to score and of the ``days`` before them."""
    grain = GRAINS[granularity]
    wanted = sorted(set(periods))
    out = []
    if not wanted or forecasts.empty:
        return pd.DataFrame(columns=["series_key", "target_period", *CALIBRATION_COLUMNS])
    window = int(round(config.days * grain.periods_per_day))
    span = config.span(grain)
    rate = config.false_pages_per_year / (365.0 * grain.periods_per_day)
    least = int(config.min_residuals_days * grain.periods_per_day)
    first, last = wanted[0] - (window + span) * grain.step, wanted[-1]
    axis = grain.periods(first, last + grain.step)
    position = {p: i for i, p in enumerate(axis)}
    targets = np.array([position[p] for p in wanted])
    weekend = np.array([p.weekday() >= 5 for p in axis]) if grain.calendar_rules else None
    f = forecasts[forecasts["target_period"].isin(position)]
    for key, rows in f.groupby("series_key", sort=True):
        expected = np.full(len(axis), np.nan)
        expected[[position[p] for p in rows["target_period"]]] = rows["expected_cost"].to_numpy(dtype=float)
        values = history.get(key)
        actual = np.zeros(len(axis)) if values is None else values.reindex(axis, fill_value=0.0).to_numpy(dtype=float)
        known = ~np.isnan(expected)
        actual = np.where(known, actual, np.nan)
        # Each target's residual window: the ``window`` periods before it.
        lagged = lambda a: sliding_window_view(a, window)[targets - window]  # noqa: E731
        exp_w, act_w = lagged(expected), lagged(actual)
        # c: a share of the mean expected cost of the window before each period.
        c_all = config.offset_share * pd.Series(expected).shift(1).rolling(window, min_periods=1).mean().to_numpy()
        c_all = np.nan_to_num(c_all, nan=0.0) + 0.01
        enough = (~np.isnan(exp_w)).sum(axis=1) >= least
        # Each residual less the median of the week of residuals up to it: a spike keeps all of its
        # size, a change that lasts keeps its first days only, so a past incident of three weeks
        # does not pass for the series' noise for half a year (the span test sees it).
        r_all = np.log((actual + c_all) / (expected + c_all))
        r_all = r_all - np.nan_to_num(pd.Series(r_all).rolling(7, min_periods=4).median().to_numpy(), nan=0.0)
        r = lagged(r_all)
        c = c_all[targets][:, None]
        # Job series are two populations (idle periods and jobs), whose top errors would read as
        # a heavy tail: theirs is exponential, and their jobs get a bound of their own.
        q90 = row_quantiles(act_w, 0.9)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a window without costs yet: NaN
            idle = np.where(np.isnan(act_w), np.nan, act_w < 0.25 * q90[:, None])
            idle_share = np.nan_to_num(np.nanmean(idle, axis=1), nan=0.0)
        shape_cap = np.where(idle_share >= 1 / 3, 0.0, config.max_tail_shape)
        upper_q = tail_quantile(r, rate, config.tail_share, shape_cap)
        lower_q = -tail_quantile(-r, rate, config.tail_share, shape_cap)
        profile = _profiles(act_w, None if weekend is None else lagged(weekend), idle_share,
                            np.exp(np.nan_to_num(upper_q, nan=-np.inf)))
        # The span's sums ending at each period of the window, as ``rules.span_beyond`` reads them:
        # without their most unusual period, but a job series' whole (one job is not an outlier).
        exp_s = _windows(expected, span, np.sum)
        total = _windows(actual, span, np.sum)
        above, below = span_without_extreme(total, exp_s, _windows(actual, span, np.max),
                                            _windows(actual, span, np.min), span)
        exp_sw, job_series, total_w = lagged(exp_s), span_read_whole(profile), lagged(total)
        above, below = (np.where(job_series[:, None], total_w, lagged(s)) for s in (above, below))
        span_upper_q = tail_quantile(np.log((above + span * c) / (exp_sw + span * c)), rate * span, config.tail_share)
        span_lower_q = -tail_quantile(-np.log((below + span * c) / (exp_sw + span * c)), rate * span, config.tail_share)
        e_now, c_now = expected[targets], c[:, 0]
        exp_span_now = exp_s[targets]

        def bound(base, q, cc):
            return np.where(enough & ~np.isnan(q) & ~np.isnan(base), np.maximum((base + cc) * np.exp(q) - cc, 0.0), np.nan)

        # Intermittent series: how often a job (a period above a quarter of the 90th percentile) runs.
        active_cost = 0.25 * q90
        active = np.where(np.isnan(act_w), np.nan, act_w > active_cost[:, None])
        share = np.nan_to_num(np.nanmean(active, axis=1), nan=1.0)
        limit = active_limit(np.clip(share, 0.0, 1.0), span, rate * span)
        if config.jobs_in_runs:
            busiest = np.nanmax(sliding_window_view(active, span, axis=1).sum(axis=-1), axis=1, initial=0.0)
            limit = np.maximum(limit, busiest + 1)
        # An intermittent series' jobs: a job day against the median job, calibrated on job days
        # alone (at the rate per job day), so a job twice its usual size stands out where the
        # all-days bound, stretched by the jobs themselves, would not see it.
        jobs = np.where(active == 1, act_w, np.nan)
        median_job = row_medians(jobs)
        with np.errstate(divide="ignore", invalid="ignore"):
            job_q = tail_quantile(np.log(jobs / median_job[:, None]), rate / np.maximum(share, 1e-9), config.tail_share)
        frame = pd.DataFrame({
            "series_key": key,
            "target_period": wanted,
            "alert_lower": bound(e_now, lower_q, c_now),
            "alert_upper": bound(e_now, upper_q, c_now),
            "span_expected": exp_span_now,
            "span_alert_lower": bound(exp_span_now, span_lower_q, span * c_now),
            "span_alert_upper": bound(exp_span_now, span_upper_q, span * c_now),
            "active_cost": np.where(enough, active_cost, np.nan),
            "span_active_limit": pd.array(np.where(enough & (span > 1), limit, np.nan), dtype="Int64"),
            "job_upper": np.where(enough, median_job * np.exp(job_q), np.nan),
        })
        frame["profile"] = profile
        frame.loc[frame["profile"] != "intermittent", "job_upper"] = np.nan
        # A job series' errors are two populations (idle periods, jobs), which no one tail fits:
        # its upper bound is the job bound.
        jobs_bound = frame["job_upper"].notna()
        frame.loc[jobs_bound, "alert_upper"] = frame.loc[jobs_bound, "job_upper"]
        # Nor is a period without its job a drop: jobs that stopped show in the span's lower bound.
        frame.loc[job_series & frame["alert_lower"].notna(), "alert_lower"] = 0.0
        out.append(frame[frame["target_period"].isin(set(rows["target_period"]))])
    if not out:
        return pd.DataFrame(columns=["series_key", "target_period", *CALIBRATION_COLUMNS])
    return pd.concat(out, ignore_index=True)[["series_key", "target_period", *CALIBRATION_COLUMNS]]
