"""Benchmark: a large organisation's bill through the whole pipeline, up to `anomalies`.

A 90-day FOCUS bill of about 10 M line items over ~3,000 sub-account × service series (100
sub-accounts × 30 services; spend log-uniform from ~$3 to ~$1,100 a day per series, weekly
seasonality, noise, a few injected spikes), written as monthly Parquet exports and backfilled with
``dagster asset materialize --select '*anomalies'`` as one run, as a user would. Prints the wall time,
each step's time, how many series each model forecast, and what was found.

    python benchmarks/scale_benchmark.py [--series-accounts 100] [--services 30] [--days 90] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks.harness import TempInstance, backfill_focus  # noqa: E402

START = date(2025, 1, 1)


def generate(folder: Path, accounts: int, services: int, days: int) -> int:
    """Write the bill as one Parquet file per month; returns the number of line items. Made in SQL:
    a Python generator would take minutes at this size. Pseudo-random values come from hashes, so
    the bill is the same on every run."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # days are UTC days
    con.execute(f"""
        CREATE TABLE series AS
        SELECT s, s // {services} AS account, s % {services} AS service,
               (hash(s, 'u') % 1000000) / 1e6 AS u,
               exp(1 + 6 * (hash(s, 'u') % 1000000) / 1e6) AS base,          -- $/day, log-uniform
               0.4 + 0.6 * (hash(s, 'w') % 1000) / 1e3 AS weekend,           -- weekend share of a weekday
               1 + (s % 73) AS resources                                      -- ~37 line items a day on average
        FROM range({accounts * services}) t(s)
    """)
    con.execute(f"""
        CREATE TABLE bill AS
        WITH items AS (
            SELECT s.*, d, r, DATE '{START}' + d::INTEGER AS day
            FROM series s, range({days}) a(d), LATERAL (SELECT unnest(range(s.resources)) AS r)
        )
        SELECT
            '000000000001' AS BillingAccountId, 'Acme' AS BillingAccountName,
            lpad(account::VARCHAR, 12, '0') AS SubAccountId, 'account-' || account AS SubAccountName, NULL::VARCHAR AS SubAccountType,
            date_trunc('month', day)::TIMESTAMPTZ AS BillingPeriodStart,
            (date_trunc('month', day) + INTERVAL 1 MONTH)::TIMESTAMPTZ AS BillingPeriodEnd,
            day::TIMESTAMPTZ AS ChargePeriodStart, (day + 1)::TIMESTAMPTZ AS ChargePeriodEnd,
            round(cost, 6) AS BilledCost, round(cost, 6) AS EffectiveCost, round(cost * 1.1, 6) AS ListCost,
            round(cost, 6) AS ContractedCost, 'USD' AS BillingCurrency,
            CASE WHEN account % 10 < 7 THEN 'AWS' WHEN account % 10 < 9 THEN 'Microsoft' ELSE 'Google Cloud' END AS ProviderName,
            'service-' || service AS ServiceName, 'Compute' AS ServiceCategory,
            'region-' || (hash(s, r) % 4) AS RegionId,
            'res-' || s || '-' || r AS ResourceId, 'res-' || s || '-' || r AS ResourceName, 'sku-' || service || '-' || (r % 3) AS SkuId,
            'Usage' AS ChargeCategory, NULL::VARCHAR AS ChargeClass, 'usage of service-' || service AS ChargeDescription,
            'Usage-Based' AS ChargeFrequency, 'Standard' AS PricingCategory, NULL::VARCHAR AS CommitmentDiscountId,
            CASE WHEN hash(s, 't') % 10 = 0 THEN '{{}}' ELSE '{{"team": "team-' || (hash(s, 't') % 20) || '"}}' END AS Tags
        FROM (
            SELECT *, base / resources
                      * CASE WHEN dayofweek(day) IN (0, 6) THEN weekend ELSE 1 END
                      * (1 + 0.05 * ((hash(s, r, d) % 2001) / 1000.0 - 1))     -- ±5 % noise
                      * CASE WHEN s % 499 = 7 AND d = {days - 10} THEN 6 ELSE 1 END AS cost  -- a few runaway days
            FROM items
        )
    """)
    rows = con.execute("SELECT count(*) FROM bill").fetchone()[0]
    for (month,) in con.execute("SELECT DISTINCT BillingPeriodStart FROM bill ORDER BY 1").fetchall():
        path = folder / f"focus-{month:%Y-%m}.parquet"
        con.execute(f"COPY (SELECT * FROM bill WHERE BillingPeriodStart = ?) TO '{path}' (FORMAT parquet)", [month])
    return rows


def step_seconds(workdir: Path) -> list[tuple[str, float]]:
    """Each step of the latest run on the instance under workdir, with its duration."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(TempInstance(workdir).dagster_home)) as instance:
        (run,) = instance.get_runs(limit=1)
        return [(step.step_key, step.end_time - step.start_time) for step in instance.get_run_step_stats(run.run_id)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="finops-scale-benchmark-"))

    began = time.perf_counter()
    rows = generate(workdir / "focus", args.accounts, args.services, args.days)
    print(f"Bill: {rows:,} line items, {args.accounts * args.services:,} sub-account × service series, {args.days} days "
          f"(generated in {time.perf_counter() - began:.0f} s)")

    wall = backfill_focus(workdir, workdir / "focus", START, START + timedelta(days=args.days - 1))
    print(f"\n90-day backfill through `anomalies`, one run: {wall:.0f} s on {os.cpu_count()} cores (target ≤ 600 s)\n")

    print("| step | seconds |\n|---|---:|")
    for step, seconds in step_seconds(workdir):
        print(f"| {step} | {seconds:.0f} |")

    with duckdb.connect(str(workdir / "data" / "finops.duckdb"), read_only=True) as con:
        print("\nSeries forecast per model and level (horizon-0 rows):")
        print(con.sql("""SELECT series_level, model, count(DISTINCT series_key) AS series, count(*) AS forecasts
                         FROM cost_forecasts WHERE horizon = 0 GROUP BY ALL ORDER BY ALL""").df().to_markdown(index=False))
        print("\nAnomalies:")
        print(con.sql("""SELECT series_level, severity, count(*) AS anomalies, count(*) FILTER (explained_by IS NULL) AS unexplained
                         FROM anomalies GROUP BY ALL ORDER BY ALL""").df().to_markdown(index=False))


if __name__ == "__main__":
    main()
