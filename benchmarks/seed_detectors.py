"""The "seed" anomaly detectors of cost-monitoring tutorials, as baselines for the benchmark.

Each takes daily cost (a Series over consecutive days, or a DataFrame with one column per series;
days without cost are 0) and returns a boolean flag of the same shape. Only the z-score flags
falls as well as rises, as the tutorials write it; none flags a day without enough history.

* ``zscore_7d``:   |x − mean(previous 7 days)| / std(previous 7 days) > 3
* ``dod_25``:      a rise of more than 25 % over the previous day (which had cost)
* ``ma_3_vs_14``:  the mean of the last 3 days (today included) above 1.25× the mean of the 14
                   days before them
* ``any_of_three``: their union, as the tutorials ship them
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

Costs = pd.Series | pd.DataFrame

# Below this (relative to the mean) a rolling std is float noise from a constant window, not spread.
_FLAT = 1e-6


def zscore_7d(x: Costs) -> Costs:
    history = x.shift(1).rolling(7)
    mean, std = history.mean(), history.std()
    deviation = (x - mean).abs()
    tolerance = _FLAT * np.maximum(mean.abs(), 1.0)
    flat = std <= tolerance
    # A flat week: any change is infinitely many standard deviations away.
    flags = (flat & (deviation > tolerance)) | (~flat & (deviation > 3 * std))
    return flags & mean.notna()


def dod_25(x: Costs) -> Costs:
    previous = x.shift(1)
    return (previous > 0) & (x > 1.25 * previous)


def ma_3_vs_14(x: Costs) -> Costs:
    recent = x.rolling(3).mean()
    before = x.shift(3).rolling(14).mean()
    return (recent > 1.25 * before) & before.notna()


def any_of_three(x: Costs) -> Costs:
    return zscore_7d(x) | dod_25(x) | ma_3_vs_14(x)


SEED_DETECTORS: dict[str, Callable[[Costs], Costs]] = {
    "zscore_7d": zscore_7d,
    "dod_25": dod_25,
    "ma_3_vs_14": ma_3_vs_14,
    "any_of_three": any_of_three,
}


def as_days(values: pd.Series) -> pd.Series:
    """Dates, timestamps (naive, or aware: taken in UTC) or ISO strings as midnight timestamps."""
    days = pd.to_datetime(values)
    if days.dt.tz is not None:
        days = days.dt.tz_convert("UTC").dt.tz_localize(None)
    return days.dt.normalize()


def daily_matrix(costs: pd.DataFrame) -> pd.DataFrame:
    """Long-form (series_key, day, cost) as one column per series over every day from the first
    to the last, 0 where a series has no cost."""
    wide = costs.assign(day=as_days(costs["day"])).pivot_table(index="day", columns="series_key", values="cost",
                                                               aggfunc="sum")
    days = pd.date_range(wide.index.min(), wide.index.max(), freq="D")
    return wide.reindex(days).fillna(0.0).astype(float)


def flag_all(costs: pd.DataFrame) -> pd.DataFrame:
    """Every flag of every seed detector: rows (detector, series_key, day), ``day`` a date."""
    if costs.empty:
        return pd.DataFrame(columns=["detector", "series_key", "day"])
    wide = daily_matrix(costs)
    out = []
    for name, detector in SEED_DETECTORS.items():
        flags = detector(wide).to_numpy()
        d_idx, s_idx = np.nonzero(flags)
        out.append(pd.DataFrame({"detector": name, "series_key": wide.columns[s_idx], "day": wide.index[d_idx].date}))
    return pd.concat(out, ignore_index=True)
