"""Prophet forecasts of cost per day (or per hour), without look-ahead.

A series is refit on a fixed cadence: every period uses the fit anchored at the last cadence
boundary on or before it, trained only on periods strictly before that anchor. The anchors are aligned to a
fixed epoch, so a two-year backfill and a year of daily runs use the same fits and produce the same
numbers. Training values that sit far outside their own weekday's recent range are clipped first,
so yesterday's anomaly does not widen tomorrow's band.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from finops_pipeline.detection.periods import GRAINS, Grain

MODEL_NAME = "prophet"

# Prophet samples its intervals from numpy's global generator: seeding and sampling happen under
# one lock so that fits running in parallel threads still give the same numbers on every rerun.
_SAMPLING_LOCK = threading.Lock()


@dataclass(frozen=True)
class ForecastConfig:
    refit_every_days: int = 7
    min_history_days: int = 28
    max_history_days: int = 365
    horizon_days: int = 30
    interval_width: float = 0.98
    uncertainty_samples: int = 300
    workers: int = 0  # 0: one per core
    granularity: str = "daily"

    @classmethod
    def for_granularity(cls, granularity: str, **overrides) -> ForecastConfig:
        """The defaults for a grain. Hourly: same-day detection, so a refit every midnight on up
        to six weeks of hours (1,008 points, with the daily and weekly cycles), forecasting two
        days; four weeks of history first, so the same-hour-of-week z-score can confirm."""
        base = {"refit_every_days": 1, "min_history_days": 28, "max_history_days": 42, "horizon_days": 2} \
            if granularity == "hourly" else {}
        return cls(**{**base, **overrides, "granularity": granularity})

    @property
    def grain(self) -> Grain:
        return GRAINS[self.granularity]


def refit_anchor(period: date, every_days: int) -> date:
    """The cadence boundary on or before ``period``; with 7 days, the Monday of its week (at
    midnight, for an hour)."""
    ordinal = period.toordinal()
    anchor = date.fromordinal(ordinal - (ordinal - 1) % every_days)
    return datetime.combine(anchor, datetime.min.time()) if isinstance(period, datetime) else anchor


def clip_outliers(values: np.ndarray, weeks: int = 8, k: float = 6.0, season: int = 7, keep_from: int | None = None) -> np.ndarray:
    """Clip each value to median ± k·MAD of the same point of the week (``season`` periods apart:
    the same weekday, or the same hour of the week) over the previous ``weeks`` weeks.

    A one-off spike in the training data would otherwise inflate the band for weeks; a real level
    shift is accepted once it makes up half of the weekday's recent history, and at once from
    ``keep_from`` on (a level a person marked expected).
    """
    clipped = values.astype(float).copy()
    for i in range(len(values) if keep_from is None else min(keep_from, len(values))):
        prior = values[max(0, i - season * weeks) : i][::-1][season - 1 :: season]  # most recent first
        if len(prior) < 3:
            continue
        median = float(np.median(prior))
        mad = 1.4826 * float(np.median(np.abs(prior - median)))
        spread = k * max(mad, 0.05 * abs(median), 1e-6)
        clipped[i] = min(max(values[i], median - spread), median + spread)
    return clipped


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
        daily_seasonality=grain.name == "hourly",
        seasonality_mode="multiplicative",
        interval_width=config.interval_width,
        uncertainty_samples=config.uncertainty_samples,
    )
    model.fit(train, seed=1)  # Stan's optimizer, seeded: reruns give the same fit
    with _SAMPLING_LOCK:
        np.random.seed(first_period.toordinal() % (2**31))
        predicted = model.predict(pd.DataFrame({"ds": stamps}))
    return pd.DataFrame(
        {
            "target_period": targets,
            "expected_cost": predicted["yhat"].clip(lower=0.0).to_numpy(),
            "lower_bound": predicted["yhat_lower"].clip(lower=0.0).to_numpy(),
            "upper_bound": predicted["yhat_upper"].clip(lower=0.0).to_numpy(),
        }
    )


@dataclass(frozen=True)
class _Task:
    series_key: str
    anchor: date
    periods: tuple[date, ...]
    values: np.ndarray
    first_period: date
    keep_from: int | None = None  # index from which training values are kept as they are


def _run_task(task: _Task, config: ForecastConfig) -> pd.DataFrame:
    # Always the anchor's whole window, whichever of its periods were asked for: the band's random
    # draws depend on the shape of the prediction, and a rerun of one day must match the backfill.
    step, horizon = config.grain.step, timedelta(days=config.horizon_days)
    last = task.anchor + timedelta(days=config.refit_every_days) - step + horizon
    predicted = fit_predict(task.values, task.first_period, task.anchor, last, config, task.keep_from)
    by_period = predicted.set_index("target_period")
    frames = []
    for period in task.periods:
        window = by_period.loc[period : period + horizon].reset_index()
        window.insert(0, "forecast_period", period)
        window["horizon"] = [int((t - period) / step) for t in window["target_period"]]
        frames.append(window)
    out = pd.concat(frames, ignore_index=True)
    out["series_key"] = task.series_key
    out["trained_through"] = task.anchor - step
    out["training_periods"] = len(task.values)
    return out


def build_tasks(history: Mapping[str, pd.Series], periods: Iterable[date], config: ForecastConfig,
                accepted: Mapping[str, date] | None = None) -> list[_Task]:
    """One fit per series and refit anchor. ``history`` maps a series key to cost indexed by
    period; periods without cost are zero from the series' first period on. ``accepted`` maps a
    series to the period from which its level is accepted as normal (not clipped)."""
    grain = config.grain
    by_anchor: dict[date, list[date]] = defaultdict(list)
    for period in sorted(periods):
        by_anchor[refit_anchor(period, config.refit_every_days)].append(period)
    tasks = []
    for key, series in sorted(history.items()):
        series = series.sort_index()
        if series.empty:
            continue
        first_seen = series.index.min()
        for anchor, anchor_periods in sorted(by_anchor.items()):
            train_start = max(first_seen, anchor - timedelta(days=config.max_history_days))
            if anchor - train_start < timedelta(days=config.min_history_days):
                continue
            index = grain.periods(train_start, anchor)
            values = series.reindex(index, fill_value=0.0).to_numpy(dtype=float)
            keep_from = None
            if accepted and key in accepted:
                keep_from = sum(p < accepted[key] for p in index)
            tasks.append(_Task(key, anchor, tuple(anchor_periods), values, train_start, keep_from))
    return tasks


def forecast(history: Mapping[str, pd.Series], periods: Iterable[date], config: ForecastConfig = ForecastConfig(),
             accepted: Mapping[str, date] | None = None) -> pd.DataFrame:
    """Forecasts for each series and period in ``periods``: the period itself (horizon 0) and the
    next ``config.horizon_days`` days of periods, each from data strictly before the period's
    refit anchor."""
    tasks = build_tasks(history, periods, config, accepted)
    columns = ["forecast_period", "target_period", "horizon", "series_key", "expected_cost", "lower_bound",
               "upper_bound", "trained_through", "training_periods"]
    if not tasks:  # too little history yet: nothing to forecast, with the columns' real types
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.endswith(("cost", "bound")) else "object") for c in columns})
    workers = min(config.workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:
        frames = [_run_task(task, config) for task in tasks]
    else:
        # Threads suffice: the Stan optimizer runs as a subprocess, outside the GIL.
        with ThreadPoolExecutor(workers) as pool:
            frames = list(pool.map(lambda task: _run_task(task, config), tasks))
    out = pd.concat(frames, ignore_index=True)
    return out[columns].sort_values(["forecast_period", "series_key", "horizon"], ignore_index=True)
