"""The pipeline's time grain: daily (the default) or hourly (``FINOPS_GRANULARITY=hourly``).

A period is named by its start in UTC: a ``date`` for a day, a naive UTC ``datetime`` for an
hour. Both add and compare with ``timedelta``, so the forecasting and scoring code is the same
for either grain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd


@dataclass(frozen=True)
class Grain:
    name: str
    step: timedelta
    freq: str  # the pandas frequency
    periods_per_week: int

    @property
    def periods_per_day(self) -> int:
        return int(timedelta(days=1) / self.step)

    def period(self, value) -> date | datetime:
        """``value`` (a date, datetime or Timestamp, naive UTC or aware) as this grain's period."""
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.date() if self.name == "daily" else ts.floor("h").to_pydatetime()

    def periods_of(self, values) -> list:
        """``period`` for a whole column at once."""
        stamps = pd.to_datetime(pd.Series(values))
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return list(stamps.dt.date) if self.name == "daily" else list(stamps.dt.floor("h").dt.to_pydatetime())

    def periods(self, start, end) -> list:
        """The periods in ``[start, end)``."""
        first, end = self.period(start), self.period(end)
        return [first + i * self.step for i in range(max(0, -(-(end - first) // self.step)))]

    def label(self, period) -> str:
        p = self.period(period)
        return p.isoformat() if self.name == "daily" else f"{p:%Y-%m-%d %H:%M} UTC"


DAILY = Grain("daily", timedelta(days=1), "D", 7)
HOURLY = Grain("hourly", timedelta(hours=1), "h", 168)
GRAINS = {g.name: g for g in (DAILY, HOURLY)}
