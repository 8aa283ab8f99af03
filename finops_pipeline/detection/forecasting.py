"""Prophet forecasts of daily cost, without look-ahead.

A series is refit on a fixed cadence: every day uses the fit anchored at the last cadence boundary
on or before it, trained only on days strictly before that anchor. The anchors are aligned to a
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
from datetime import date, timedelta

import numpy as np
import pandas as pd

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


def refit_anchor(day: date, every_days: int) -> date:
    """The cadence boundary on or before ``day``; with 7 days, the Monday of its week."""
    ordinal = day.toordinal()
    return date.fromordinal(ordinal - (ordinal - 1) % every_days)


def clip_outliers(values: np.ndarray, weeks: int = 8, k: float = 6.0) -> np.ndarray:
    """Clip each value to median ± k·MAD of the same weekday over the previous ``weeks`` weeks.

    A one-off spike in the training data would otherwise inflate the band for weeks; a real level
    shift is accepted once it makes up half of the weekday's recent history.
    """
    clipped = values.astype(float).copy()
    for i in range(len(values)):
        prior = values[max(0, i - 7 * weeks) : i][::-1][6::7]  # same weekday, most recent first
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
    values: np.ndarray, first_day: date, predict_from: date, predict_to: date, config: ForecastConfig
) -> pd.DataFrame:
    """Fit Prophet on ``values`` (one per day from ``first_day``) and predict ``[predict_from, predict_to]``.

    Returns ``target_day, expected_cost, lower_bound, upper_bound``; costs are never negative.
    """
    days = pd.date_range(predict_from, predict_to, freq="D")
    if np.allclose(values, 0.0):
        zeros = np.zeros(len(days))
        return pd.DataFrame({"target_day": days.date, "expected_cost": zeros, "lower_bound": zeros, "upper_bound": zeros})

    _quiet_stan()
    from prophet import Prophet

    train = pd.DataFrame({"ds": pd.date_range(first_day, periods=len(values), freq="D"), "y": clip_outliers(values)})
    model = Prophet(
        growth="linear",
        weekly_seasonality=True,
        yearly_seasonality=False,  # needs two years of history to be more than noise
        daily_seasonality=False,
        seasonality_mode="multiplicative",
        interval_width=config.interval_width,
        uncertainty_samples=config.uncertainty_samples,
    )
    model.fit(train, seed=1)  # Stan's optimizer, seeded: reruns give the same fit
    with _SAMPLING_LOCK:
        np.random.seed(first_day.toordinal() % (2**31))
        predicted = model.predict(pd.DataFrame({"ds": days}))
    return pd.DataFrame(
        {
            "target_day": days.date,
            "expected_cost": predicted["yhat"].clip(lower=0.0).to_numpy(),
            "lower_bound": predicted["yhat_lower"].clip(lower=0.0).to_numpy(),
            "upper_bound": predicted["yhat_upper"].clip(lower=0.0).to_numpy(),
        }
    )


@dataclass(frozen=True)
class _Task:
    series_key: str
    anchor: date
    days: tuple[date, ...]
    values: np.ndarray
    first_day: date


def _run_task(task: _Task, config: ForecastConfig) -> pd.DataFrame:
    # Always the anchor's whole window, whichever of its days were asked for: the band's random
    # draws depend on the shape of the prediction, and a rerun of one day must match the backfill.
    last = task.anchor + timedelta(days=config.refit_every_days - 1 + config.horizon_days)
    predicted = fit_predict(task.values, task.first_day, task.anchor, last, config)
    by_day = predicted.set_index("target_day")
    frames = []
    for day in task.days:
        window = by_day.loc[day : day + timedelta(days=config.horizon_days)].reset_index()
        window.insert(0, "forecast_date", day)
        window["horizon_days"] = [(t - day).days for t in window["target_day"]]
        frames.append(window)
    out = pd.concat(frames, ignore_index=True)
    out["series_key"] = task.series_key
    out["trained_through"] = task.anchor - timedelta(days=1)
    out["training_days"] = len(task.values)
    return out


def build_tasks(history: Mapping[str, pd.Series], days: Iterable[date], config: ForecastConfig) -> list[_Task]:
    """One fit per series and refit anchor. ``history`` maps a series key to daily cost indexed by
    date; days without cost are zero from the series' first day on."""
    by_anchor: dict[date, list[date]] = defaultdict(list)
    for day in sorted(days):
        by_anchor[refit_anchor(day, config.refit_every_days)].append(day)
    tasks = []
    for key, series in sorted(history.items()):
        series = series.sort_index()
        if series.empty:
            continue
        first_seen = series.index.min()
        for anchor, anchor_days in sorted(by_anchor.items()):
            train_start = max(first_seen, anchor - timedelta(days=config.max_history_days))
            if (anchor - train_start).days < config.min_history_days:
                continue
            index = pd.date_range(train_start, anchor - timedelta(days=1), freq="D").date
            values = series.reindex(index, fill_value=0.0).to_numpy(dtype=float)
            tasks.append(_Task(key, anchor, tuple(anchor_days), values, train_start))
    return tasks


def forecast(history: Mapping[str, pd.Series], days: Iterable[date], config: ForecastConfig = ForecastConfig()) -> pd.DataFrame:
    """Forecasts for each series and day in ``days``: the day itself (horizon 0) and the next
    ``config.horizon_days`` days, each from data strictly before the day's refit anchor."""
    tasks = build_tasks(history, days, config)
    columns = ["forecast_date", "target_day", "horizon_days", "series_key", "expected_cost", "lower_bound",
               "upper_bound", "trained_through", "training_days"]
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
    return out[columns].sort_values(["forecast_date", "series_key", "horizon_days"], ignore_index=True)
