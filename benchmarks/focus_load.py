"""Benchmark: loading + aggregating a FOCUS month, three ways, each in its own process.

  pipeline  the pipeline's own code: stage the files, validate, write raw_billing for the month,
            then aggregate raw_billing to daily cost per account × service × category
  duckdb    the floor: one plain DuckDB query aggregating straight from the files
  pandas    pandas.read_csv / read_parquet, then groupby

Prints wall time and peak memory (max RSS of the process) for each. Usage:

    python benchmarks/focus_load.py --rows 1000000 --format parquet csv
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

AGGREGATE = """
    SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE) AS day, SubAccountId, ServiceName, ChargeCategory,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective
    FROM {source} GROUP BY ALL
"""


def generate(path: Path, rows: int, fmt: str) -> None:
    """A month of FOCUS line items, made in SQL (the demo generator would take minutes at this size)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE bill AS
        SELECT
            '012345678901' AS BillingAccountId, 'Acme' AS BillingAccountName,
            lpad(CAST(i % 40 AS VARCHAR), 12, '0') AS SubAccountId, 'account-' || (i % 40) AS SubAccountName,
            TIMESTAMPTZ '2025-03-01 00:00:00+00' AS BillingPeriodStart,
            TIMESTAMPTZ '2025-04-01 00:00:00+00' AS BillingPeriodEnd,
            TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_hours(CAST(i % (31 * 24) AS BIGINT)) AS ChargePeriodStart,
            TIMESTAMPTZ '2025-03-01 00:00:00+00' + to_hours(CAST(i % (31 * 24) AS BIGINT) + 1) AS ChargePeriodEnd,
            round(random() * 10, 6) AS BilledCost, round(random() * 9, 6) AS EffectiveCost,
            round(random() * 11, 6) AS ListCost, 'USD' AS BillingCurrency, 'AWS' AS ProviderName,
            'service-' || (i % 150) AS ServiceName, 'Compute' AS ServiceCategory,
            'us-east-' || (i % 3) AS RegionId, 'arn:aws:ec2:us-east-1:1234:instance/i-' || i AS ResourceId,
            'sku-' || (i % 2000) AS SkuId,
            CASE WHEN i % 1000 = 0 THEN 'Tax' WHEN i % 997 = 0 THEN 'Credit' ELSE 'Usage' END AS ChargeCategory,
            'Usage-Based' AS ChargeFrequency, 'Standard' AS PricingCategory,
            '{{"team": "t' || (i % 12) || '"}}' AS Tags
        FROM range({rows}) t(i)
    """)
    if fmt == "csv":
        con.execute(f"""COPY (SELECT * REPLACE (strftime(ChargePeriodStart AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
                              strftime(ChargePeriodEnd AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
                              strftime(BillingPeriodStart AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS BillingPeriodStart,
                              strftime(BillingPeriodEnd AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS BillingPeriodEnd)
                        FROM bill) TO '{path}' (HEADER)""")
    else:
        con.execute(f"COPY bill TO '{path}' (FORMAT parquet)")


def run_pipeline(path: Path, workdir: Path) -> int:
    import duckdb

    from finops_pipeline.sources.base import ExportFiles
    from finops_pipeline.sources.staging import load_files
    from finops_pipeline.warehouse import migrate

    con = duckdb.connect(str(workdir / "bench.duckdb"))
    start, end = date(2025, 3, 1), date(2025, 4, 1)
    migrate(con)
    load_files(con, ExportFiles((path,), str(path)), "focus", start, end)  # what raw_billing runs for a FOCUS source
    return len(con.execute(AGGREGATE.format(source="raw_billing")).fetchall())


def run_duckdb(path: Path) -> int:
    import duckdb

    reader = f"read_parquet('{path}')" if path.suffix == ".parquet" else f"read_csv('{path}', header = true)"
    return len(duckdb.connect().execute(AGGREGATE.format(source=reader)).fetchall())


def run_pandas(path: Path) -> int:
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"SubAccountId": str})
    frame["day"] = pd.to_datetime(frame["ChargePeriodStart"], utc=True).dt.date
    out = frame.groupby(["day", "SubAccountId", "ServiceName", "ChargeCategory"])[["BilledCost", "EffectiveCost"]].sum()
    return len(out)


def child(variant: str, path: str, workdir: str) -> None:
    started = time.perf_counter()
    groups = {"pipeline": lambda: run_pipeline(Path(path), Path(workdir)),
              "duckdb": lambda: run_duckdb(Path(path)),
              "pandas": lambda: run_pandas(Path(path))}[variant]()
    seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    peak_mb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024
    print(json.dumps({"variant": variant, "seconds": round(seconds, 2), "peak_mb": round(peak_mb), "groups": groups}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    parser.add_argument("--variants", nargs="+", default=["duckdb", "pipeline", "pandas"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.format:
            path = Path(tmp) / f"focus_month.{fmt}"
            t = time.perf_counter()
            generate(path, args.rows, fmt)
            print(f"\n{args.rows:,} rows, {fmt}, {path.stat().st_size / 2**20:,.0f} MiB (generated in {time.perf_counter() - t:.0f} s)")
            print(f"{'variant':<10} {'wall s':>8} {'peak MiB':>9} {'vs duckdb':>10}")
            floor = None
            for variant in args.variants:
                out = subprocess.run([sys.executable, __file__, "--child", variant, str(path), tmp],
                                     capture_output=True, text=True)
                if out.returncode:
                    print(f"{variant:<10} failed: {out.stderr.strip().splitlines()[-1]}")
                    continue
                result = json.loads(out.stdout.strip().splitlines()[-1])
                floor = floor or (result["seconds"] if variant == "duckdb" else None)
                ratio = f"{result['seconds'] / floor:.2f}x" if floor else "-"
                print(f"{variant:<10} {result['seconds']:>8.2f} {result['peak_mb']:>9,} {ratio:>10}")
                (Path(tmp) / "bench.duckdb").unlink(missing_ok=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
    else:
        main()
