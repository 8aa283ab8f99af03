"""Benchmark: the pipeline's detection against the four seed detectors, on a labelled bill.

1. Generates a labelled FOCUS bill and writes it as monthly Parquet exports: ``--bill labelled``
   (``labelled_bill.py``, two years, the bill the thresholds were tuned on), ``--bill bursty``
   (``bursty_bill.py``, two years of another design: small, bursty and intermittent series,
   anomalies worth $300–$3,000 in total, lost exports; never used to choose a threshold) or
   ``--bill hourly`` (``hourly_bill.py``, five months of hourly line items: diurnal and weekly
   cycles, heavy tails, scrape gaps; run and scored at the hourly grain) or ``--bill ai``
   (``ai_bill.py``, two years of OpenAI and Anthropic usage and costs made by ``ai_billing.to_focus``,
   45 API keys, the AI anomaly kinds, and a self-hosted GPU estate of three clusters made by
   ``PrometheusSource.rows``, idle GPUs labelled; never used to choose a threshold). The AI bill's
   rows carry their ``x_`` columns (model, token type, API key, requests; a GPU's busy %, idle,
   idle-streak and absent minutes) in the Parquet exports.
2. Runs the whole pipeline on it, the way a user backfills: ``dagster asset materialize`` of
   raw_billing → dbt models → cost_forecasts → anomalies over every day, as one single-run
   backfill. Its wall time is the backfill figure.
3. Reads what the pipeline would alert on (incidents at or above warning that no finer incident
   explains, from the period each first paged on), and, for reference, every anomaly row it
   stored (info and above).
4. Runs the seed detectors (``seed_detectors.py``) on the same daily Usage cost per sub-account ×
   service, as the tutorials do (daily bills), and prints recall, incident precision, false
   alarms per series-month and median delay for each (``detection_metrics.py``; hours, on the
   hourly bill).

On the AI bill the usage series of the false-alarm rate are still the sub-account × service
series ``pipeline_flags`` reads, which for AI rows are project (workspace) × model, since the model
is the ServiceName. Flags on every level are scored, the ``api_key`` level included: an AI label
names its key (``api_key_id``), so a flag on ``api_key:{provider}/{project}/{key}`` matches it as
``detection_metrics.covers`` matches any key, component by component (the other bills' labels have
no ``api_key_id``, so a key flag matches none of them); and it may name further series an alert on
is right about (``also_series``: the model a switch left, a new project's second key), which the
bill's own ``Bill.covers`` (``ai_bill.covers``) adds.

Usage:

    python benchmarks/detection_benchmark.py [--bill labelled|bursty|hourly|ai] [--start DAY] [--end DAY]
        [--seed N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks import ai_bill, bursty_bill, detection_metrics, hourly_bill, labelled_bill, seed_detectors  # noqa: E402
from benchmarks.harness import REPO, backfill_focus  # noqa: E402

from finops_pipeline.detection.incidents import summarize  # noqa: E402
from finops_pipeline.detection.scoring import Thresholds  # noqa: E402
from finops_pipeline.detection.series import series_key  # noqa: E402
from finops_pipeline.grain import GRAINS  # noqa: E402


@dataclass(frozen=True)
class Bill:
    """A labelled bill: its generator and seed, the grain it is run and scored at, its span."""

    generator: ModuleType
    seed: int
    granularity: str = "daily"
    start: date = date(2024, 1, 1)
    end: date = date(2026, 1, 1)  # exclusive
    # No detector is scored before it: the pipeline needs four weeks of history and its calibration
    # the four weeks (hours) after; the labels start later still.
    warm_up_days: int = 90
    # Whether a flag's series is about a label (``detection_metrics.covers`` unless the bill has its own).
    covers: Callable[[str, pd.Series], bool] = detection_metrics.covers

    @property
    def step(self) -> str:
        """The scoring period, ``detection_metrics``' step."""
        return GRAINS[self.granularity].freq


BILLS = {"labelled": Bill(labelled_bill, 7), "bursty": Bill(bursty_bill, 11),
         "hourly": Bill(hourly_bill, 13, "hourly", date(2025, 1, 1), date(2025, 6, 1), warm_up_days=60),
         "ai": Bill(ai_bill, 17, covers=ai_bill.covers)}
PIPELINE_ROWS = ("finops-pipeline: alerts (warning and above)", "finops-pipeline: incidents, info included",
                 "finops-pipeline: every anomaly row, explained included")


def run_pipeline(workdir: Path, start: date, end: date, code: Path = REPO, focus: Path | None = None,
                 granularity: str = "daily") -> float:
    """Backfill the pipeline of the code tree ``code`` over [start, end) on the exports under
    ``focus`` (default workdir/focus), into an instance and DuckDB under workdir; the wall time."""
    return backfill_focus(workdir, focus or workdir / "focus", start, end - timedelta(days=1), code, granularity)


def pipeline_flags(db: Path, table: pd.DataFrame | None = None, granularity: str = "daily"
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(alerted, every unexplained incident's anomalies, every anomaly, usage per sub-account ×
    service and period) from the pipeline's DuckDB, each with its period in the ``day`` column
    (the hour, at the hourly grain). ``table``: the incidents of its anomalies (default: this
    checkout's ``summarize``; another code tree's own, to score that tree)."""
    grain = GRAINS[granularity]
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute("SELECT * FROM anomalies").df()
        usage = con.execute(
            f"""SELECT {grain.period_column} AS day, provider, sub_account_id, service_name,
                       sum(effective_cost)::DOUBLE AS cost
                FROM {grain.cost_table} WHERE charge_category = 'Usage' GROUP BY ALL"""
        ).df()
    found["day"] = detection_metrics.as_periods(found["period_start"], grain.freq)
    # The incidents an alert goes out for: warning or above, and not explained by a finer one.
    thresholds = Thresholds.for_granularity(granularity)  # the pipeline's own, at its grain
    if table is None:
        table = summarize(found, pd.Series(dtype="object"), thresholds)
    alerted_ids = set(table.loc[table["severity"].isin(["warning", "critical"]) & table["explained_by"].isna(),
                                "incident_id"])
    alerted = paged(found[found["incident_id"].isin(alerted_ids)], thresholds)
    shown = found[found["incident_id"].isin(set(table.loc[table["explained_by"].isna(), "incident_id"]))]
    usage["series_key"] = [series_key("sub_account_service", *k)
                           for k in zip(usage.provider, usage.sub_account_id, usage.service_name)]
    columns = ["series_key", "day"]
    return alerted[columns], shown[columns], found[columns], usage[["series_key", "day", "cost"]]


def paged(anomalies: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """The anomalies of alerted incidents from the period each incident first paged on: the
    first period by which its rows so far earn warning or above (this checkout's ``summarize``).
    An incident that pages on its total, or a ramp it became, did not page on its first day, and
    its delay and its catch count from the day it did."""
    kept = []
    for _, rows in anomalies.sort_values("period_start").groupby("incident_id", sort=False):
        for end in range(1, len(rows) + 1):
            severity = summarize(rows.iloc[:end], pd.Series(dtype="object"), thresholds)["severity"].iloc[0]
            if severity in ("warning", "critical"):
                kept.append(rows.iloc[end - 1:])
                break
    return pd.concat(kept) if kept else anomalies.iloc[:0]


def scored_window(start: date, end: date, warm_up_days: int = 90) -> tuple[date, date]:
    """The days every detector is scored on, both included: after the warm-up, to the last day."""
    return start + timedelta(days=warm_up_days), end - timedelta(days=1)


def evaluate(flags: pd.DataFrame, labels: pd.DataFrame, n_series: int, start: date, end: date,
             bill: Bill = BILLS["labelled"]) -> dict:
    """``detection_metrics.evaluate`` of flags (series_key, period) over the scored window of [start, end)."""
    scored_from, last = scored_window(start, end, bill.warm_up_days)
    return detection_metrics.evaluate(flags, labels, n_series, scored_from, last, covers=bill.covers,
                                      step=bill.step, reach=GRAINS[bill.granularity].incident_reach)


def score_pipeline(flags: tuple[pd.DataFrame, ...], labels: pd.DataFrame, start: date, end: date,
                   bill: Bill = BILLS["labelled"]) -> dict[str, dict]:
    """The pipeline's rows of the table (``PIPELINE_ROWS``: alerts, incidents, every anomaly) from
    ``pipeline_flags``; false alarms are per sub-account × service series-month of the usage."""
    *found, usage = flags
    n_series = usage["series_key"].nunique()
    return {name: evaluate(f, labels, n_series, start, end, bill) for name, f in zip(PIPELINE_ROWS, found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bill", choices=list(BILLS), default="labelled")
    parser.add_argument("--start", type=date.fromisoformat, help="default: the bill's (2024-01-01; hourly 2025-01-01)")
    parser.add_argument("--end", type=date.fromisoformat, help="exclusive; default: the bill's (2026-01-01; hourly 2025-06-01)")
    parser.add_argument("--seed", type=int, help="default: 7 for labelled, 11 for bursty, 13 for hourly, 17 for ai")
    parser.add_argument("--workdir", type=Path, help="keep the bill and the pipeline's DuckDB here (default: a temp dir)")
    args = parser.parse_args()
    bill = BILLS[args.bill]
    start, end = args.start or bill.start, args.end or bill.end
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finops-detection-benchmark-"))

    items, labels = bill.generator.generate(start, end, args.seed if args.seed is not None else bill.seed)
    labelled_bill.write_focus(items, workdir / "focus")
    usage_series = items.loc[items["ChargeCategory"] == "Usage", ["ProviderName", "SubAccountId", "ServiceName"]].drop_duplicates()
    print(f"Labelled bill ({args.bill}{'' if args.bill == bill.granularity else ', ' + bill.granularity}): {len(items):,} line items, {len(usage_series)} "
          f"sub-account × service series, {start}..{end - timedelta(days=1)}; {int((~labels.benign).sum())} anomaly "
          f"windows, {int(labels.benign.sum())} benign events")
    print(labels.groupby(["benign", "kind"]).size().rename("windows").to_string(), "\n")

    wall = run_pipeline(workdir, start, end, granularity=bill.granularity)
    flags = pipeline_flags(workdir / "data" / "finops.duckdb", granularity=bill.granularity)
    usage = flags[-1]
    n_series = usage["series_key"].nunique()
    scored_from, last = scored_window(start, end, bill.warm_up_days)
    results = score_pipeline(flags, labels, start, end, bill)
    if bill.granularity == "daily":  # the seed detectors model days
        seeds = seed_detectors.flag_all(usage)
        for name in seed_detectors.SEED_DETECTORS:
            results[name] = evaluate(seeds.loc[seeds["detector"] == name, ["series_key", "day"]], labels, n_series,
                                     start, end, bill)
    unit = GRAINS[bill.granularity].unit
    print(f"Scored {scored_from}..{last}: {n_series} series × {(last - scored_from).days / 30.44:.1f} months; "
          f"delays in {unit}s\n")
    print(detection_metrics.format_table(results).replace("(days)", f"({unit}s)"))
    print("\nRecall by kind:")
    print(pd.DataFrame({name: r["recall_by_kind"] for name, r in results.items()}).round(2).to_markdown())
    print(f"\nMedian delay by kind ({unit}s from the anomaly's start to its first flag):")
    print(pd.DataFrame({name: r["delay_by_kind"] for name, r in results.items()}).round(1).to_markdown())
    print(f"\nBackfill of the whole pipeline over {(end - start).days} days (raw billing → dbt → forecasts → "
          f"anomalies, {bill.granularity}): {wall:.0f} s on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
