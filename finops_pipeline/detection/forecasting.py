"""Prophet forecasts of cost per day (or per hour), without look-ahead.

A series is refit on a fixed cadence: every period uses the fit anchored at the last cadence
boundary on or before it, trained only on periods strictly before that anchor. The anchors are aligned to a
fixed epoch, so a two-year backfill and a year of daily runs use the same fits and produce the same
numbers. Training values that sit far outside their own weekday's recent range are clipped first,
so yesterday's anomaly does not widen tomorrow's band.

Prophet is spent where it pays: on the series that carry the money (see ``ForecastConfig``). The
long tail gets an exact, cheap model, the median and MAD of the same point of the week over the
last eight weeks, whose band is what the robust z-score checks anyway.

The year-end holidays (Dec 24 – Jan 1) are the one yearly effect on a cost bill, and half a year
of history cannot show them to either model: a daily series' dip is measured on its own last
year-end, against the weeks before it, and scales both models' bands over this one
(``year_end_factor``); the holiday days in the training data are divided by what they billed, so the
return to work in January is not a spike. A series' first year-end has nothing to learn from.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from statistics import NormalDist
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from finops_pipeline.grain import GRAINS, Grain
from finops_pipeline.processes import die_with_parent

PROPHET, WEEKDAY_MEDIAN = "prophet", "weekday_median"


# What differs from ForecastConfig's defaults, per grain. Hourly: same-day detection, so a refit
# every midnight on up to six weeks of hours (1,008 points, with the daily and weekly cycles),
# forecasting two days; four weeks of history first, so the same-hour-of-week z-score can confirm.
GRAIN_DEFAULTS = {
    "daily": {},
    "hourly": {"refit_every_days": 1, "min_history_days": 28, "max_history_days": 42, "horizon_days": 2},
}


@dataclass(frozen=True)
class ForecastConfig:
    refit_every_days: int = 7
    min_history_days: int = 28
    max_history_days: int = 182  # half a year: this season's trend, not last year's
    horizon_days: int = 30
    interval_width: float = 0.98
    # 0: the band is Prophet's fitted observation noise, yhat ± z·sigma_obs, exact and cheap; it
    # matches Prophet's sampled interval to within sampling noise over the week a fit serves
    # (measured), widening less far out. > 0: Prophet's own sampled interval, with trend uncertainty.
    uncertainty_samples: int = 0
    workers: int = 0  # 0: one per core
    granularity: str = "daily"
    # Prophet for a series whose mean cost over its last 28 training days is at least this per
    # day, the largest ``prophet_max_series`` of them per refit. Below $1,000 a day a move worth a
    # warning ($250 and 50 %) is a large one, as plain to the weekday median as to Prophet; above
    # it Prophet's trend and seasonality tell a real move from growth. On the labelled benchmark
    # bill, $500 instead gave 31 % more fits for 52 % rather than 50 % incident precision.
    prophet_min_daily_usd: float = 1000.0
    prophet_max_series: int = 300
    median_weeks: int = 8  # the weekday median's look-back
    median_band_sigmas: float = 3.0  # its band: median ± this many robust standard deviations
    # The calibrated alert bounds stored with each period's forecast (``calibration``): how many
    # false pages a series may raise a year in each direction, on its own out-of-sample errors.
    false_pages_per_year: float = 0.5

    @classmethod
    def for_granularity(cls, granularity: str, **overrides) -> ForecastConfig:
        """The defaults for a grain (see ``GRAIN_DEFAULTS``), with ``overrides``."""
        return cls(**{**GRAIN_DEFAULTS[granularity], **overrides, "granularity": granularity})

    @property
    def grain(self) -> Grain:
        return GRAINS[self.granularity]


def refit_anchor(period: date, every_days: int) -> date:
    """The cadence boundary on or before ``period``; with 7 days, the Monday of its week (at
    midnight, for an hour)."""
    ordinal = period.toordinal()
    anchor = date.fromordinal(ordinal - (ordinal - 1) % every_days)
    return datetime.combine(anchor, datetime.min.time()) if isinstance(period, datetime) else anchor


def row_medians(x: np.ndarray) -> np.ndarray:
    """The median of each row, ignoring NaN (NaN for a row of NaN): np.nanmedian goes through
    masked arrays and is a hundred times slower on rows this short."""
    if x.size == 0:
        return np.full(len(x), np.nan)
    x = np.sort(x, axis=1)  # NaN sorts last
    n = (~np.isnan(x)).sum(axis=1)
    rows = np.arange(len(x))
    median = (x[rows, np.maximum((n - 1) // 2, 0)] + x[rows, n // 2]) / 2  # the middle one, or the middle two's mean
    return np.where(n > 0, median, np.nan)


def clip_outliers(values: np.ndarray, weeks: int = 8, k: float = 6.0, season: int = 7, keep_from: int | None = None) -> np.ndarray:
    """Clip each value to median ± k·MAD of the same point of the week (``season`` periods apart:
    the same weekday, or the same hour of the week) over the previous ``weeks`` weeks.

    A one-off spike in the training data would otherwise inflate the band for weeks; a real level
    shift is accepted once it makes up half of the weekday's recent history, and at once from
    ``keep_from`` on (a level a person marked expected).
    """
    values = values.astype(float)
    n = len(values)
    # Row i: the same point of the week 1..weeks weeks before i (NaN before the first value).
    lags = np.arange(n)[:, None] - season * np.arange(1, weeks + 1)[None, :]
    prior = np.where(lags >= 0, values[np.clip(lags, 0, None)], np.nan)
    usable = (lags >= 0).sum(axis=1) >= 3
    if keep_from is not None:
        usable[keep_from:] = False
    if not usable.any():
        return values.copy()
    prior = prior[usable]
    median = row_medians(prior)
    mad = 1.4826 * row_medians(np.abs(prior - median[:, None]))
    spread = k * np.maximum(np.maximum(mad, 0.05 * np.abs(median)), 1e-6)
    clipped = values.copy()
    clipped[usable] = np.clip(values[usable], median - spread, median + spread)
    return clipped


YEAR_END_DAYS = 9  # Dec 24 – Jan 1


def year_end_start(period: date) -> date | None:
    """Dec 24 of the year-end holidays ``period`` falls in; None outside them."""
    if period.month == 12 and period.day >= 24:
        return date(period.year, 12, 24)
    if period.month == 1 and period.day == 1:
        return date(period.year - 1, 12, 24)
    return None


def year_end_factor(series: pd.Series, start: date, before: date, weeks: int = 4) -> float | None:
    """What the series billed over the year-end holidays from ``start`` (Dec 24), as a share of its
    usual cost: the median, over the holiday days before ``before``, of each day's cost over the
    median of its weekday in the ``weeks`` weeks before the holidays. None without three such days
    or without those weeks of history. Held to [0.1, 2]: a series that stops over the holidays
    must not divide its training data by zero."""
    if series.empty or series.index.min() > start - timedelta(days=7 * weeks):
        return None

    def get(day):
        return float(series.get(day, 0.0))

    ratios = []
    for i in range(YEAR_END_DAYS):
        day = start + timedelta(days=i)
        if day >= before:
            break
        # The same weekday in the weeks before the holidays began.
        first = day - timedelta(days=7 * ((i // 7) + 1))
        usual = float(np.median([get(first - timedelta(days=7 * k)) for k in range(weeks)]))
        if usual > 0:
            ratios.append(get(day) / usual)
    return float(np.clip(np.median(ratios), 0.1, 2.0)) if len(ratios) >= 3 else None


def _quiet_stan() -> None:
    import cmdstanpy

    # cmdstanpy resets its logger on first use; Prophet logs every fit at INFO.
    cmdstanpy.utils.get_logger().setLevel(logging.WARNING)
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)


def fit_predict(
    values: np.ndarray, first_period: date, predict_from: date, predict_to: date, config: ForecastConfig,
    keep_from: int | None = None,
) -> pd.DataFrame:
    """Fit Prophet on ``values`` (one per period from ``first_period``) and predict
    ``[predict_from, predict_to]``.

    Returns ``target_period, expected_cost, lower_bound, upper_bound``; costs are never negative.
    """
    grain = config.grain
    stamps = pd.date_range(predict_from, predict_to, freq=grain.freq)
    targets = [grain.period(t) for t in stamps]
    if np.allclose(values, 0.0):
        zeros = np.zeros(len(stamps))
        return pd.DataFrame({"target_period": targets, "expected_cost": zeros, "lower_bound": zeros, "upper_bound": zeros})

    _quiet_stan()
    from prophet import Prophet

    train = pd.DataFrame({"ds": pd.date_range(first_period, periods=len(values), freq=grain.freq),
                          "y": clip_outliers(values, season=grain.periods_per_week, keep_from=keep_from)})
    model = Prophet(
        growth="linear",
        weekly_seasonality=True,
        yearly_seasonality=False,  # needs two years of history to be more than noise
        daily_seasonality=grain.periods_per_day > 1,
        seasonality_mode="multiplicative",
        interval_width=config.interval_width,
        uncertainty_samples=config.uncertainty_samples,
    )
    model.fit(train, seed=1)  # Stan's optimizer, seeded: reruns give the same fit
    # A sampled band comes from numpy's global generator: seeded, reruns give the same band (fits
    # run one at a time in each worker process).
    np.random.seed(first_period.toordinal() % (2**31))
    predicted = model.predict(pd.DataFrame({"ds": stamps}))
    expected = predicted["yhat"].to_numpy()
    if config.uncertainty_samples:
        lower, upper = predicted["yhat_lower"].to_numpy(), predicted["yhat_upper"].to_numpy()
    else:
        spread = NormalDist().inv_cdf(0.5 + config.interval_width / 2) * float(np.ravel(model.params["sigma_obs"])[0]) \
            * model.y_scale
        lower, upper = expected - spread, expected + spread
    return pd.DataFrame({"target_period": targets, "expected_cost": np.clip(expected, 0.0, None),
                         "lower_bound": np.clip(lower, 0.0, None), "upper_bound": np.clip(upper, 0.0, None)})


def weekday_median_predict(values: np.ndarray, steps: int, config: ForecastConfig, keep_from: int | None = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected value, lower and upper bound for the ``steps`` periods after ``values``: the
    median of the same point of the week over the last ``config.median_weeks`` weeks (outliers
    clipped as for Prophet), ± ``median_band_sigmas`` robust standard deviations (1.4826·MAD),
    at least ±10 % of the median."""
    season = config.grain.periods_per_week
    clipped = clip_outliers(values, season=season, keep_from=keep_from)
    n = len(clipped)
    # For each step, the same point of the week in the last weeks of training (a step a week or
    # more ahead looks back from its point of the week too).
    lags = season * np.arange(1, config.median_weeks + 1)
    positions = n + (np.arange(steps) % season)[:, None] - lags[None, :]
    valid = positions >= 0
    samples = np.where(valid, clipped[np.clip(positions, 0, None)], np.nan)
    expected = row_medians(samples)
    spread = 1.4826 * row_medians(np.abs(samples - expected[:, None]))
    spread = np.maximum(config.median_band_sigmas * spread, 0.1 * expected)
    return expected, np.maximum(expected - spread, 0.0), expected + spread


# A fit's predictions for each period from its anchor: expected, lower and upper bound.
Window = tuple[np.ndarray, np.ndarray, np.ndarray]

# Bumped when a change to the code changes what a fit predicts: stored fits of an older version
# are not reused.
FIT_VERSION = f"1/prophet-{importlib.metadata.version('prophet')}"


@dataclass(frozen=True)
class _Task:
    series_key: str
    anchor: date
    periods: tuple[date, ...]
    values: np.ndarray
    first_period: date
    keep_from: int | None = None  # index from which training values are kept as they are
    model: str = PROPHET

    def fingerprint(self) -> tuple:
        """Two tasks with equal fingerprints predict the same numbers (a coarse series that is,
        so far, a single finer one): fit once."""
        return (self.model, self.anchor, self.periods, self.first_period, self.keep_from, self.values.tobytes())

    def fit_key(self, config: ForecastConfig) -> str:
        """Everything the fit's window depends on, hashed: a stored fit with this key predicts
        exactly what fitting again would (whichever of the anchor's periods are asked for)."""
        digest = hashlib.sha256(repr((FIT_VERSION, config.granularity, config.refit_every_days, config.horizon_days,
                                      config.interval_width, config.uncertainty_samples, self.model,
                                      str(self.anchor), str(self.first_period), self.keep_from)).encode())
        digest.update(self.values.tobytes())
        return digest.hexdigest()[:32]


@dataclass
class Fits:
    """Prophet fits by ``_Task.fit_key``: ``stored``, those ``forecast`` may reuse (a daily run
    reuses the fit its refit anchor's first run made); after it, ``used`` holds every key it
    needed and ``ran`` the fits it had to run, with the task each was first run for."""

    stored: dict[str, Window] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    ran: dict[str, tuple[_Task, Window]] = field(default_factory=dict)


def _predict(task: _Task, config: ForecastConfig) -> Window:
    """The task's predictions over its anchor's whole window (plus, for Prophet, the horizon
    after it), whichever of its periods were asked for: a sampled band's random draws depend on the
    shape of the prediction, and a rerun of one day must match the backfill."""
    step = config.grain.step
    window = int(timedelta(days=config.refit_every_days) / step)
    if task.model != PROPHET:
        return weekday_median_predict(task.values, window, config, task.keep_from)
    horizon = int(timedelta(days=config.horizon_days) / step)
    predicted = fit_predict(task.values, task.first_period, task.anchor, task.anchor + (window - 1 + horizon) * step,
                            config, task.keep_from)
    return tuple(predicted[c].to_numpy() for c in ("expected_cost", "lower_bound", "upper_bound"))


def _rows(task: _Task, config: ForecastConfig, predicted: Window) -> dict[str, list]:
    """The task's rows, as columns, without the series key (a fit can serve several identical
    series). A Prophet series gets its periods and the horizon after each;
    a weekday-median series its periods only (horizon 0): the long tail is scored, not planned."""
    step = config.grain.step
    horizon = int(timedelta(days=config.horizon_days) / step) if task.model == PROPHET else 0
    expected, lower, upper = predicted
    out = defaultdict(list)
    for period in task.periods:
        offset = int((period - task.anchor) / step)
        count = min(horizon + 1, len(expected) - offset)
        out["forecast_period"] += [period] * count
        out["target_period"] += [period + h * step for h in range(count)]
        out["horizon"] += range(count)
        for name, column in (("expected_cost", expected), ("lower_bound", lower), ("upper_bound", upper)):
            out[name].extend(column[offset : offset + count])
    rows = len(out["horizon"])
    out["trained_through"] = [task.anchor - step] * rows
    out["training_periods"] = [len(task.values)] * rows
    out["model"] = [task.model] * rows
    return out


def build_tasks(history: Mapping[str, pd.Series], periods: Iterable[date], config: ForecastConfig,
                accepted: Mapping[str, date] | None = None) -> list[_Task]:
    """One fit per series and refit anchor. ``history`` maps a series key to cost indexed by
    period; periods without cost are zero from the series' first period on. ``accepted`` maps a
    series to the period from which its level is accepted as normal (not clipped). At each anchor
    the series that carry the money get Prophet, the rest the weekday median."""
    grain = config.grain
    factors: dict = {}  # year_end_factor per series, holidays and how much of them was seen
    by_anchor: dict[date, list[date]] = defaultdict(list)
    for period in sorted(periods):
        by_anchor[refit_anchor(period, config.refit_every_days)].append(period)
    recent = int(timedelta(days=28) / grain.step)
    tasks = []
    for anchor, anchor_periods in sorted(by_anchor.items()):
        candidates = []
        for key, series in sorted(history.items()):
            if series.empty:
                continue
            first_seen = series.index.min()
            train_start = max(first_seen, anchor - timedelta(days=config.max_history_days))
            if anchor - train_start < timedelta(days=config.min_history_days):
                continue
            index = grain.periods(train_start, anchor)
            values = series.reindex(index, fill_value=0.0).to_numpy(dtype=float)
            if grain.calendar_rules:
                values = _holidays_removed(key, series, index, values, anchor, factors)
            keep_from = sum(p < accepted[key] for p in index) if accepted and key in accepted else None
            daily_mean = float(values[-recent:].mean()) * grain.periods_per_day
            candidates.append((daily_mean, _Task(key, anchor, tuple(anchor_periods), values, train_start, keep_from)))
        # The largest series first; ties by key, so the choice is the same on every rerun.
        candidates.sort(key=lambda c: (-c[0], c[1].series_key))
        for rank, (daily_mean, task) in enumerate(candidates):
            big = daily_mean >= config.prophet_min_daily_usd and rank < config.prophet_max_series
            tasks.append(task if big else replace(task, model=WEEKDAY_MEDIAN))
    return tasks


def _factor(key: str, series: pd.Series, start: date, before: date, factors: dict) -> float | None:
    seen = min(before, start + timedelta(days=YEAR_END_DAYS))
    if (key, start, seen) not in factors:
        factors[key, start, seen] = year_end_factor(series, start, seen)
    return factors[key, start, seen]


def _holidays_removed(key: str, series: pd.Series, index: list[date], values: np.ndarray, anchor: date,
                      factors: dict) -> np.ndarray:
    """The training ``values`` (one per day of ``index``) with each year-end holiday day divided
    by what the holidays billed that year, as far as seen before ``anchor``."""
    for year in range(index[0].year - 1, anchor.year + 1):
        start = date(year, 12, 24)
        if start >= anchor or start + timedelta(days=YEAR_END_DAYS) <= index[0]:
            continue
        factor = _factor(key, series, start, anchor, factors)
        if factor is not None:
            offset = (start - index[0]).days
            lo, hi = max(offset, 0), min(offset + YEAR_END_DAYS, len(values))
            values = values.copy()
            values[lo:hi] /= factor
    return values


def _year_end_scaled(out: pd.DataFrame, history: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Each band over the year-end holidays scaled by what its series billed over the previous
    ones (unchanged for a series without them)."""
    target = pd.to_datetime(out["target_period"])
    rows = np.flatnonzero(((target.dt.month == 12) & (target.dt.day >= 24)) | ((target.dt.month == 1) & (target.dt.day == 1)))
    if not len(rows):
        return out
    factors: dict = {}
    scale = np.ones(len(out))
    for row, key, period in zip(rows, out["series_key"].to_numpy()[rows], out["target_period"].to_numpy()[rows]):
        start = year_end_start(period)
        last = date(start.year - 1, 12, 24)
        scale[row] = _factor(key, history[key], last, start, factors) or 1.0
    for column in ("expected_cost", "lower_bound", "upper_bound"):
        out[column] = out[column].to_numpy() * scale
    return out


FORECAST_COLUMNS = ["forecast_period", "target_period", "horizon", "series_key", "model", "expected_cost", "lower_bound",
                    "upper_bound", "trained_through", "training_periods"]


def forecast(history: Mapping[str, pd.Series], periods: Iterable[date], config: ForecastConfig = ForecastConfig(),
             accepted: Mapping[str, date] | None = None, fits: Fits | None = None) -> pd.DataFrame:
    """Forecasts for each series and period in ``periods``: the period itself (horizon 0) and, for
    a Prophet series, the next ``config.horizon_days`` days of periods, each from data strictly
    before the period's refit anchor. Prophet fits found in ``fits.stored`` are reused, not run
    again; ``fits`` records which were used and which ran."""
    fits = Fits() if fits is None else fits
    tasks = build_tasks(history, periods, config, accepted)
    if not tasks:  # too little history yet: nothing to forecast, with the columns' real types
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith(("cost", "bound")) else "object")
                             for c in FORECAST_COLUMNS})
    fingerprints = [task.fingerprint() for task in tasks]
    unique = {}
    for fingerprint, task in zip(fingerprints, tasks):
        unique.setdefault(fingerprint, task)
    keys = {fp: task.fit_key(config) for fp, task in unique.items() if task.model == PROPHET}
    fits.used.update(keys.values())
    todo = list({key: unique[fp] for fp, key in keys.items() if key not in fits.stored}.items())
    workers = min(config.workers or os.cpu_count() or 1, max(len(todo) // 8, 1))
    if workers <= 1:
        results = [_predict(task, config) for _, task in todo]
    else:
        # Processes, not threads: half of a Prophet fit is Python (building the model, predicting),
        # which threads would run one at a time. Spawned, as the step's process runs threads.
        # Each worker dies with the run's process, should that be killed.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            results = list(pool.map(_predict, [task for _, task in todo], repeat(config),
                                    chunksize=max(1, len(todo) // (workers * 8))))
    for (key, task), predicted in zip(todo, results):
        fits.ran[key] = (task, predicted)
    predictions = {**fits.stored, **{key: predicted for key, (_, predicted) in fits.ran.items()}}
    rows_of: dict[tuple, dict[str, list]] = {}
    columns = defaultdict(list)
    for fingerprint, task in zip(fingerprints, tasks):
        if fingerprint not in rows_of:
            predicted = predictions[keys[fingerprint]] if fingerprint in keys else _predict(task, config)
            rows_of[fingerprint] = _rows(task, config, predicted)
        rows = rows_of[fingerprint]
        for name in FORECAST_COLUMNS:
            columns[name].extend([task.series_key] * len(rows["horizon"]) if name == "series_key" else rows[name])
    out = pd.DataFrame({name: columns[name] for name in FORECAST_COLUMNS})
    if config.grain.calendar_rules:
        out = _year_end_scaled(out, history)
    return out.sort_values(["forecast_period", "series_key", "horizon"], ignore_index=True)
