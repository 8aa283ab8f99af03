"""The pipeline's time grain: daily (the default) or hourly (``FINOPS_GRANULARITY=hourly``).

A grain carries every fact that differs between the two: the length of a period, the dbt mart
and its period column, the unit people read, the Cost Explorer granularity. Code outside this
module asks the grain instead of comparing its name.

A ``Period`` is named by its start in UTC: a ``date`` for a day, a naive UTC ``datetime`` for an
hour. Both add and compare with ``timedelta``, so forecasting and scoring are the same code for
either grain. Partitions are daily for both grains: a day's partition holds its 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeAlias

import pandas as pd

Period: TypeAlias = date | datetime

PARTITION_KEY_FORMAT = "%Y-%m-%d"  # daily partitions, whatever the grain


@dataclass(frozen=True)
class Grain:
    name: str  # daily or hourly, as stored in the tables' `granularity` column
    step: timedelta
    freq: str  # the pandas frequency
    unit: str  # what one period is called: day, hour
    cost_table: str  # the dbt mart at this grain
    ai_table: str  # the dbt mart of AI API usage at this grain
    series_model: str  # the dbt view of every detection series at this grain
    period_column: str  # its period column
    period_sql_type: str  # that column's DuckDB type: a DATE for days, a UTC TIMESTAMP for hours
    cost_explorer_granularity: str  # AWS Cost Explorer's name for it
    other_marts: tuple[str, ...]  # the dbt marts of other grains, not built at this one
    # The detectors that model calendar days (the noise gate and day-of-month factor, ramps,
    # level shifts, weekends billed like weekdays, the year-end factor) run on day series only.
    calendar_rules: bool
    # The schedule: when it runs, and why then. It runs the partition holding the period that
    # ended before it fired; 1 where the current day's partition exists (to be re-run hourly).
    refresh_cron: str
    refresh_note: str
    partition_end_offset: int
    # Anomalies of one series at most this many periods apart are one incident. Days: consecutive.
    # Hours: up to half a day apart, since a runaway inside an on/off series' usual busy hours (a
    # CI fleet left on overnight is back to normal from 08:00 to 19:00) is not anomalous there.
    incident_reach: int = 1

    @property
    def periods_per_day(self) -> int:
        return int(timedelta(days=1) / self.step)

    @property
    def periods_per_week(self) -> int:
        return 7 * self.periods_per_day

    @property
    def _is_day(self) -> bool:
        return self.step == timedelta(days=1)

    def period(self, value) -> Period:
        """``value`` (a date, datetime or Timestamp, naive UTC or aware) as this grain's period."""
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.date() if self._is_day else ts.floor(self.freq).to_pydatetime()

    def periods_of(self, values) -> list[Period]:
        """``period`` for a whole column at once."""
        stamps = pd.to_datetime(pd.Series(values))
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return list(stamps.dt.date) if self._is_day else list(stamps.dt.floor(self.freq).dt.to_pydatetime())

    def periods(self, start, end) -> list[Period]:
        """The periods in ``[start, end)``."""
        first, end = self.period(start), self.period(end)
        return [first + i * self.step for i in range(max(0, -(-(end - first) // self.step)))]

    def window(self, start, end, now) -> tuple[Period, Period]:
        """A partition's time window as periods, cut at ``now``: the current day's partition (hourly
        grain) covers only the hours that have ended."""
        return self.period(start), min(self.period(end), self.period(now))

    def label(self, period) -> str:
        p = self.period(period)
        return p.isoformat() if self._is_day else f"{p:%Y-%m-%d %H:%M} UTC"

    def file_label(self, period) -> str:
        """``label`` fit for a file name."""
        return self.label(period).replace(" UTC", "").replace(" ", "T").replace(":", "")

    @staticmethod
    def partition_key(period) -> str:
        """The daily partition holding ``period``."""
        return f"{pd.Timestamp(period):{PARTITION_KEY_FORMAT}}"


DAILY = Grain(
    name="daily", step=timedelta(days=1), freq="D", unit="day",
    cost_table="daily_costs", ai_table="daily_ai_usage", series_model="daily_cost_series", period_column="day", period_sql_type="DATE",
    cost_explorer_granularity="DAILY", other_marts=("hourly_costs", "hourly_cost_series", "hourly_ai_usage"),
    calendar_rules=True,
    refresh_cron="0 6 * * *", partition_end_offset=0,
    refresh_note="Every morning at 06:00 UTC, yesterday's partition: most providers have the day's usage by then.",
)
HOURLY = Grain(
    name="hourly", step=timedelta(hours=1), freq="h", unit="hour",
    cost_table="hourly_costs", ai_table="hourly_ai_usage", series_model="hourly_cost_series", period_column="hour", period_sql_type="TIMESTAMP",
    cost_explorer_granularity="HOURLY", other_marts=(), calendar_rules=False,
    refresh_cron="30 * * * *", partition_end_offset=1, incident_reach=12,
    refresh_note="Every hour at :30, the day of the hour before (today's partition, up to the last full hour): "
    "hourly exports carry an hour's usage within minutes.",
)
GRAINS = {g.name: g for g in (DAILY, HOURLY)}


def contiguous_ranges(days) -> list[tuple[date, date]]:
    """Inclusive (first, last) runs of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
