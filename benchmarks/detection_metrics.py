"""Scoring a detector's flags against the labelled bill's anomalies.

A detector's output is its flagged series-periods, (series_key, day): days, or hours when scored
with ``step="h"`` (the column keeps its name). Series keys follow the pipeline's levels, coarse to
fine::

    total
    provider:{provider}
    sub_account:{provider}/{sub_account_id}
    service:{provider}/{service_name}
    team:{team}
    sub_account_service:{provider}/{sub_account_id}/{service_name}

A flag *matches* a label when its key is the label's series or a coarser one containing it
(``covers``; pass your own to ``evaluate`` to change that). Consecutive flagged periods of one key
(at most ``reach`` periods apart: the pipeline's grain's ``incident_reach``) form one *incident*, which is what a person is paged for. With L the non-benign labels whose
window starts in the evaluated period and I the incidents in it:

* recall: the share of L with a matching flag inside the label's window [start, end];
* precision: the share of I overlapping a matching label's window extended by ``GRACE_DAYS`` after
  its end (a level shift or ramp is still news a few days on);
* false alarms per series-month: the incidents matching no label, over n_series × months;
* median delay: over the caught labels, the first matching flag's period − the label's start, in
  periods (days, or hours).

``account_compute_burst`` is labelled once per series it hits, so each counts on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import cache

import numpy as np
import pandas as pd

from finops_pipeline.detection.series import LEVEL_COLUMNS  # the label columns each level's key names, in order

GRACE_DAYS = 7
DAYS_PER_MONTH = 365.25 / 12


def parse_key(key: str) -> dict[str, str]:
    """A series key's components, by label column: {} for ``total``. The last component takes the
    rest of the key, so a service name may contain '/'."""
    return dict(_components(key))


@cache
def _components(key: str) -> tuple[tuple[str, str], ...]:
    if key == "total":
        return ()
    level, _, rest = key.partition(":")
    columns = LEVEL_COLUMNS[level]
    return tuple(zip(columns, rest.split("/", len(columns) - 1)))


def covers(flag_key: str, label: pd.Series) -> bool:
    """Whether a flag on ``flag_key`` is about ``label``'s series: the same series, or a coarser
    one containing it."""
    return all(label.get(column) == value for column, value in _components(flag_key))


def as_periods(values: pd.Series, step: str = "D") -> pd.Series:
    """Dates, timestamps (naive, or aware: taken in UTC) or ISO strings as the start of their
    period (``step``: "D" a day, "h" an hour), naive UTC."""
    stamps = pd.to_datetime(values)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.dt.floor(step)


def incidents(flags: pd.DataFrame, step: str = "D", reach: int = 1) -> pd.DataFrame:
    """Runs of flagged periods per series_key, each at most ``reach`` periods after the one
    before: (incident, series_key, first, last)."""
    if flags.empty:
        return pd.DataFrame({"incident": pd.Series(dtype=int), "series_key": pd.Series(dtype=str),
                             "first": pd.Series(dtype="datetime64[ns]"), "last": pd.Series(dtype="datetime64[ns]")})
    days = flags[["series_key", "day"]].drop_duplicates().sort_values(["series_key", "day"], ignore_index=True)
    new_run = (days["series_key"] != days["series_key"].shift()) | (days["day"].diff() > reach * pd.Timedelta(1, step))
    days["incident"] = new_run.cumsum() - 1
    return (days.groupby("incident").agg(series_key=("series_key", "first"), first=("day", "min"), last=("day", "max"))
            .reset_index())


def evaluate(flags: pd.DataFrame, labels: pd.DataFrame, n_series: int, start: date, end: date,
             covers: Callable[[str, pd.Series], bool] = covers, step: str = "D", reach: int = 1) -> dict:
    """Recall, precision, false alarms and delay of ``flags`` (series_key, day) against the
    non-benign ``labels``, over the periods [start, end] (both included; ``step`` "h": hours,
    ``end`` a date meaning its last hour). ``false_on_benign`` counts the false incidents that
    overlap a benign event (a purchase, a recovery, a slow adoption...)."""
    period = pd.Timedelta(1, step)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1) - period
    flags = flags.assign(day=as_periods(flags["day"], step))
    flags = flags[(flags["day"] >= lo) & (flags["day"] <= hi)]
    # Key components compare as text (labels read back from CSV may have parsed account ids as numbers).
    labels = labels.astype({c: "str" for c in ("provider", "sub_account_id", "service_name", "team") if c in labels})
    labels = labels.assign(start=as_periods(labels["start"], step), end=as_periods(labels["end"], step))
    labels = labels[(labels["start"] >= lo) & (labels["start"] <= hi)]
    benign = labels[labels["benign"].astype(bool)].reset_index(drop=True)
    labels = labels[~labels["benign"].astype(bool)].reset_index(drop=True)
    runs = incidents(flags, step, reach)
    keys = flags["series_key"].unique()

    pairs = _pairs(keys, labels, covers)
    hits = flags.merge(pairs, on="series_key").join(labels[["start", "end"]], on="label")
    hits = hits[(hits["day"] >= hits["start"]) & (hits["day"] <= hits["end"])]
    first_hit = hits.groupby("label")["day"].min()
    caught = labels.index.isin(first_hit.index)
    delays = (first_hit - labels.loc[first_hit.index, "start"]) / period

    false = ~runs["incident"].isin(_overlapping(runs, labels, pairs))
    on_benign = runs.loc[false, "incident"].isin(_overlapping(runs, benign, _pairs(keys, benign, covers)))
    months = ((hi - lo + period) / pd.Timedelta(days=1)) / DAYS_PER_MONTH
    return {
        "recall": _share(caught.sum(), len(labels)),
        "precision": _share((~false).sum(), len(runs)),
        "false_alarms_per_series_month": float(false.sum() / (n_series * months)) if n_series and months > 0 else None,
        "median_delay_days": float(np.median(delays)) if len(delays) else None,
        "caught": int(caught.sum()),
        "labels": len(labels),
        "incidents": len(runs),
        "false_incidents": int(false.sum()),
        "false_on_benign": int(on_benign.sum()),
        "recall_by_kind": {kind: _share(caught[group.index].sum(), len(group))
                           for kind, group in labels.groupby("kind", sort=True)},
        # Periods from each caught label's start to its first flag, median per kind.
        "delay_by_kind": {kind: float(np.median(delays[delays.index.isin(group.index)]))
                          for kind, group in labels.groupby("kind", sort=True) if delays.index.isin(group.index).any()},
    }


def _pairs(keys, labels: pd.DataFrame, covers: Callable[[str, pd.Series], bool]) -> pd.DataFrame:
    """(series_key, label) for each flagged key and each label (by position) it may be about.
    Few keys × few labels: plain Python is fast enough."""
    rows = [label for _, label in labels.iterrows()]
    pairs = [(key, n) for key in keys for n, label in enumerate(rows) if covers(key, label)]
    return pd.DataFrame(pairs, columns=["series_key", "label"]).astype({"label": int})


def _overlapping(runs: pd.DataFrame, labels: pd.DataFrame, pairs: pd.DataFrame) -> set[int]:
    """The incidents overlapping a label they match, its window extended by ``GRACE_DAYS``."""
    hits = runs.merge(pairs, on="series_key").join(labels[["start", "end"]], on="label")
    hits = hits[(hits["first"] <= hits["end"] + pd.Timedelta(days=GRACE_DAYS)) & (hits["last"] >= hits["start"])]
    return set(hits["incident"])


def _share(part: int, whole: int) -> float | None:
    return float(part) / whole if whole else None


def format_table(results: dict[str, dict]) -> str:
    """A Markdown table, one row per detector: the headline metrics, then recall for each kind."""
    kinds = sorted({kind for r in results.values() for kind in r["recall_by_kind"]})
    header = ["detector", "recall", "precision", "false alarms / series-month", "median delay (days)",
              "caught / labels", "incidents (false)", *(f"recall {kind}" for kind in kinds)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, r in results.items():
        cells = [name, _fmt(r["recall"], "{:.0%}"), _fmt(r["precision"], "{:.0%}"),
                 _fmt(r["false_alarms_per_series_month"], "{:.3f}"), _fmt(r["median_delay_days"], "{:.1f}"),
                 f"{r['caught']} / {r['labels']}", f"{r['incidents']} ({r['false_incidents']})",
                 *(_fmt(r["recall_by_kind"].get(kind), "{:.0%}") for kind in kinds)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)
