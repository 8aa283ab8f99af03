"""Benchmark: the pipeline's detection against the four seed detectors, on a labelled bill.

1. Generates a labelled two-year FOCUS bill and writes it as monthly Parquet exports: ``--bill
   labelled`` (``labelled_bill.py``, the bill the thresholds were tuned on) or ``--bill bursty``
   (``bursty_bill.py``, another design: small, bursty and intermittent series, anomalies worth
   $300–$3,000 in total, lost exports; never used to choose a threshold).
2. Runs the whole pipeline on it, the way a user backfills: ``dagster asset materialize`` of
   raw_billing → dbt models → cost_forecasts → anomalies over every day, as one single-run
   backfill. Its wall time is the backfill figure.
3. Reads what the pipeline would alert on (incidents at or above warning that no finer incident
   explains, from the period each first paged on), and, for reference, every anomaly row it
   stored (info and above).
4. Runs the seed detectors (``seed_detectors.py``) on the same daily Usage cost per sub-account ×
   service, as the tutorials do, and prints recall, incident precision, false alarms per
   series-month and median delay for each (``detection_metrics.py``).

Usage:

    python benchmarks/detection_benchmark.py [--bill labelled|bursty] [--start 2024-01-01] [--end 2026-01-01]
        [--seed N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks import bursty_bill, detection_metrics, labelled_bill, seed_detectors  # noqa: E402
from benchmarks.harness import REPO, backfill_focus  # noqa: E402

from finops_pipeline.detection.incidents import summarize  # noqa: E402
from finops_pipeline.detection.series import series_key  # noqa: E402

BILLS = {"labelled": (labelled_bill, 7), "bursty": (bursty_bill, 11)}  # generator, default seed
WARM_UP_DAYS = 90  # no detector is scored before it: the pipeline's bands need four weeks, labels start later
PIPELINE_ROWS = ("finops-pipeline: alerts (warning and above)", "finops-pipeline: incidents, info included",
                 "finops-pipeline: every anomaly row, explained included")


def run_pipeline(workdir: Path, start: date, end: date, code: Path = REPO, focus: Path | None = None) -> float:
    """Backfill the pipeline of the code tree ``code`` over [start, end) on the exports under
    ``focus`` (default workdir/focus), into an instance and DuckDB under workdir; the wall time."""
    return backfill_focus(workdir, focus or workdir / "focus", start, end - timedelta(days=1), code)


def pipeline_flags(db: Path, table: pd.DataFrame | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(alerted, every unexplained incident's anomalies, every anomaly, daily usage per sub-account ×
    service) from the pipeline's DuckDB. ``table``: the incidents of its anomalies (default: this
    checkout's ``summarize``; another code tree's own, to score that tree)."""
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute("SELECT * FROM anomalies").df()
        usage = con.execute(
            """SELECT day, provider, sub_account_id, service_name, sum(effective_cost)::DOUBLE AS cost FROM daily_costs
               WHERE charge_category = 'Usage' GROUP BY ALL"""
        ).df()
    found["day"] = found["period_start"].dt.tz_convert("UTC").dt.date
    # The incidents an alert goes out for: warning or above, and not explained by a finer one.
    if table is None:
        table = summarize(found, pd.Series(dtype="object"))
    alerted_ids = set(table.loc[table["severity"].isin(["warning", "critical"]) & table["explained_by"].isna(),
                                "incident_id"])
    alerted = paged(found[found["incident_id"].isin(alerted_ids)])
    shown = found[found["incident_id"].isin(set(table.loc[table["explained_by"].isna(), "incident_id"]))]
    usage["series_key"] = [series_key("sub_account_service", *k)
                           for k in zip(usage.provider, usage.sub_account_id, usage.service_name)]
    columns = ["series_key", "day"]
    return alerted[columns], shown[columns], found[columns], usage[["series_key", "day", "cost"]]


def paged(anomalies: pd.DataFrame) -> pd.DataFrame:
    """The anomalies of alerted incidents from the period each incident first paged on: the
    first period by which its rows so far earn warning or above (this checkout's ``summarize``).
    An incident that pages on its total, or a ramp it became, did not page on its first day, and
    its delay and its catch count from the day it did."""
    kept = []
    for _, rows in anomalies.sort_values("period_start").groupby("incident_id", sort=False):
        for end in range(1, len(rows) + 1):
            severity = summarize(rows.iloc[:end], pd.Series(dtype="object"))["severity"].iloc[0]
            if severity in ("warning", "critical"):
                kept.append(rows.iloc[end - 1:])
                break
    return pd.concat(kept) if kept else anomalies.iloc[:0]


def scored_window(start: date, end: date) -> tuple[date, date]:
    """The days every detector is scored on, both included: after the warm-up, to the last day."""
    return start + timedelta(days=WARM_UP_DAYS), end - timedelta(days=1)


def evaluate(flags: pd.DataFrame, labels: pd.DataFrame, n_series: int, start: date, end: date) -> dict:
    """``detection_metrics.evaluate`` of flags (series_key, day) over the scored window of [start, end)."""
    scored_from, last = scored_window(start, end)
    flags = flags[(flags["day"] >= scored_from) & (flags["day"] <= last)]
    return detection_metrics.evaluate(flags, labels, n_series, scored_from, last)


def score_pipeline(flags: tuple[pd.DataFrame, ...], labels: pd.DataFrame, start: date, end: date) -> dict[str, dict]:
    """The pipeline's rows of the table (``PIPELINE_ROWS``: alerts, incidents, every anomaly) from
    ``pipeline_flags``; false alarms are per sub-account × service series-month of the usage."""
    *found, usage = flags
    n_series = usage["series_key"].nunique()
    return {name: evaluate(f, labels, n_series, start, end) for name, f in zip(PIPELINE_ROWS, found)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 1, 1))
    parser.add_argument("--bill", choices=list(BILLS), default="labelled")
    parser.add_argument("--seed", type=int, help="default: 7 for labelled, 11 for bursty")
    parser.add_argument("--workdir", type=Path, help="keep the bill and the pipeline's DuckDB here (default: a temp dir)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finops-detection-benchmark-"))

    generator, seed = BILLS[args.bill]
    items, labels = generator.generate(args.start, args.end, args.seed if args.seed is not None else seed)
    labelled_bill.write_focus(items, workdir / "focus")
    usage_series = items.loc[items["ChargeCategory"] == "Usage", ["ProviderName", "SubAccountId", "ServiceName"]].drop_duplicates()
    print(f"Labelled bill ({args.bill}): {len(items):,} line items, {len(usage_series)} sub-account × service series, "
          f"{args.start}..{args.end - timedelta(days=1)}; {int((~labels.benign).sum())} anomaly windows, "
          f"{int(labels.benign.sum())} benign events")
    print(labels.groupby(["benign", "kind"]).size().rename("windows").to_string(), "\n")

    wall = run_pipeline(workdir, args.start, args.end)
    flags = pipeline_flags(workdir / "data" / "finops.duckdb")
    usage = flags[-1]
    n_series = usage["series_key"].nunique()
    scored_from, last = scored_window(args.start, args.end)
    results = score_pipeline(flags, labels, args.start, args.end)
    seeds = seed_detectors.flag_all(usage)
    for name in seed_detectors.SEED_DETECTORS:
        results[name] = evaluate(seeds.loc[seeds["detector"] == name, ["series_key", "day"]], labels, n_series,
                                 args.start, args.end)
    print(f"Scored {scored_from}..{last}: {n_series} series × {(last - scored_from).days / 30.44:.1f} months\n")
    print(detection_metrics.format_table(results))
    print("\nRecall by kind:")
    print(pd.DataFrame({name: r["recall_by_kind"] for name, r in results.items()}).round(2).to_markdown())
    print("\nMedian delay by kind (days from the anomaly's start to its first flag):")
    print(pd.DataFrame({name: r["delay_by_kind"] for name, r in results.items()}).round(1).to_markdown())
    print(f"\nTwo-year backfill of the whole pipeline (raw billing → dbt → forecasts → anomalies): {wall:.0f} s "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
