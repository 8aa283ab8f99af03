"""Benchmark: loading FOCUS exports, side by side with what DuckDB alone does with the same files.

Generates N line items over D days (default 10 M over 90 days, from 2025-01-01), laid out as the
clouds deliver them: one file per billing month (``monthly``) or one hive folder per day
(``daily``, ``day=YYYY-MM-DD/part-0.parquet``). Then, each in its own process, on this machine:

  aggregate  the floor: one DuckDB aggregate straight over the files
  copy       DuckDB copying the files into a table of a new database file (no checks, rows in any order)
  pipeline   the pipeline's load path (deliveries, validation, the windowed write of raw_billing)
  dagster    the headless command ``dagster asset materialize --select '*daily_costs'`` over the
             whole range: its wall time and its raw_billing and dbt steps' times

and prints wall time (closing the database included: its checkpoint is part of a write), peak
memory, and whether the loaded totals reconcile with the files to the cent. ``--old DIR`` runs ``pipeline`` and ``dagster`` with another code tree as well (say a
worktree of the last release), in the same invocation, for a fair comparison.

    python benchmarks/focus_load.py [--rows 10000000] [--days 90] [--layout monthly daily]
        [--format parquet csv] [--variants aggregate copy pipeline dagster] [--old DIR]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import REPO, TempInstance, instance_config, materialize_command  # noqa: E402

START = date(2025, 1, 1)
# To the cent, as text: a DOUBLE sum and a DECIMAL one print alike (45004457.90, not .9).
TOTAL = "SELECT round(sum(EffectiveCost), 2)::DECIMAL(18, 2)::VARCHAR FROM {source}"
AGGREGATE = """
    SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE) AS day, SubAccountId, ServiceName, ChargeCategory,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective
    FROM {source} GROUP BY ALL
"""


def generate(folder: Path, rows: int, days: int, layout: str, fmt: str) -> None:
    """N line items over ``days`` days, made in SQL (the demo generator would take minutes)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""
        CREATE TABLE bill AS
        SELECT
            '012345678901' AS BillingAccountId, 'Acme' AS BillingAccountName,
            lpad(CAST(i % 40 AS VARCHAR), 12, '0') AS SubAccountId, 'account-' || (i % 40) AS SubAccountName,
            date_trunc('month', start) AS BillingPeriodStart, date_trunc('month', start) + INTERVAL 1 MONTH AS BillingPeriodEnd,
            start AS ChargePeriodStart, start + INTERVAL 1 HOUR AS ChargePeriodEnd,
            round(random() * 10, 6) AS BilledCost, round(random() * 9, 6) AS EffectiveCost,
            round(random() * 11, 6) AS ListCost, 'USD' AS BillingCurrency, 'AWS' AS ProviderName,
            'service-' || (i % 150) AS ServiceName, 'Compute' AS ServiceCategory,
            'us-east-' || (i % 3) AS RegionId, 'arn:aws:ec2:us-east-1:1234:instance/i-' || i AS ResourceId,
            'sku-' || (i % 2000) AS SkuId,
            CASE WHEN i % 1000 = 0 THEN 'Tax' WHEN i % 997 = 0 THEN 'Credit' ELSE 'Usage' END AS ChargeCategory,
            'Usage-Based' AS ChargeFrequency, 'Standard' AS PricingCategory,
            '{{"team": "t' || (i % 12) || '"}}' AS Tags
        FROM (SELECT i, TIMESTAMPTZ '{START} 00:00:00+00' + to_hours(CAST(i % ({days} * 24) AS BIGINT)) AS start
              FROM range({rows}) t(i))
    """)
    text = """* REPLACE (strftime(ChargePeriodStart, '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodStart,
                strftime(ChargePeriodEnd, '%Y-%m-%dT%H:%M:%SZ') AS ChargePeriodEnd,
                strftime(BillingPeriodStart, '%Y-%m-%dT%H:%M:%SZ') AS BillingPeriodStart,
                strftime(BillingPeriodEnd, '%Y-%m-%dT%H:%M:%SZ') AS BillingPeriodEnd)"""
    columns = text if fmt == "csv" else "*"
    options = "HEADER" if fmt == "csv" else "FORMAT parquet"
    if layout == "monthly":
        months = [m for (m,) in con.execute("SELECT DISTINCT BillingPeriodStart::DATE FROM bill ORDER BY 1").fetchall()]
        for m in months:
            out = folder / f"BILLING_PERIOD={m:%Y-%m}" / f"export.{fmt}"
            out.parent.mkdir(parents=True)
            con.execute(f"COPY (SELECT {columns} FROM bill WHERE BillingPeriodStart = TIMESTAMPTZ '{m}') TO '{out}' ({options})")
    else:
        for n in range(days):
            day = START + timedelta(days=n)
            out = folder / f"day={day}" / f"part-0.{fmt}"
            out.parent.mkdir(parents=True)
            con.execute(f"""COPY (SELECT {columns} FROM bill WHERE ChargePeriodStart >= TIMESTAMPTZ '{day}'
                            AND ChargePeriodStart < TIMESTAMPTZ '{day + timedelta(days=1)}') TO '{out}' ({options})""")


def _reader(folder: Path) -> str:
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    if files[0].endswith(".parquet"):
        return f"read_parquet({files!r})"
    return f"read_csv({files!r}, header = true)"


def run_aggregate(folder: Path, work: Path, days: int) -> dict:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    groups = len(con.execute(AGGREGATE.format(source=_reader(folder))).fetchall())
    return {"groups": groups, "total": con.execute(TOTAL.format(source=_reader(folder))).fetchone()[0]}


def run_copy(folder: Path, work: Path, days: int) -> dict:
    """The fastest plain copy: rows in any order, as the pipeline writes them (kept in order, a
    copy of monthly files costs 4 s more, in the checkpoint at close)."""
    import duckdb

    con = duckdb.connect(str(work / "copy.duckdb"))
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"CREATE TABLE raw AS SELECT * FROM {_reader(folder)}")
    total = con.execute(TOTAL.format(source="raw")).fetchone()[0]
    con.close()  # timed too: the checkpoint at close is part of a write
    return {"total": total}


def run_pipeline(folder: Path, work: Path, days: int) -> dict:
    """The load path of the tree on PYTHONPATH, whichever signature its ``load_files`` has."""
    import duckdb

    from finops_pipeline.sources import staging

    con = duckdb.connect(str(work / "pipeline.duckdb"))
    try:
        from finops_pipeline.warehouse import migrate

        migrate(con)
    except ImportError:  # before the warehouse layer
        from finops_pipeline.storage import ensure_table

        ensure_table(con, "raw_billing")
    files = staging.discover(str(folder))
    start, end = START, START + timedelta(days=days)
    if "export" in inspect.signature(staging.load_files).parameters:
        from finops_pipeline.sources.base import ExportFiles

        staging.load_files(con, ExportFiles(tuple(files), str(folder), tuple(staging.discover_manifests(str(folder)))),
                           "focus", start, end)
    else:
        staging.load_files(con, files, "focus", start, end)
    total = con.execute(TOTAL.format(source="raw_billing")).fetchone()[0]
    con.close()
    return {"total": total}


def run_dagster(folder: Path, work: Path, days: int, code: Path) -> dict:
    """The headless command through ``*daily_costs``, on a new instance: wall time and step times."""
    instance = TempInstance(work / "instance").create(instance_config(code))
    env = instance.env(START, code=code, FINOPS_SOURCE="focus", FINOPS_FOCUS_PATH=str(folder))
    began = time.perf_counter()
    out = subprocess.run(materialize_command(START, START + timedelta(days=days - 1), "*daily_costs"), env=env,
                         cwd=code, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    steps = subprocess.run([sys.executable, "-c", _STEP_TIMES], env=env, cwd=code, capture_output=True, text=True)
    import duckdb

    with duckdb.connect(str(instance.duckdb_path), read_only=True) as con:
        total = con.execute(TOTAL.replace("EffectiveCost", "effective_cost").format(source="daily_costs")).fetchone()[0]
    return {"seconds": round(wall, 2), "total": total, "steps": json.loads(steps.stdout.strip().splitlines()[-1])}


_STEP_TIMES = """
import json
from dagster import DagsterInstance
with DagsterInstance.get() as i:
    run = i.get_runs(limit=1)[0]
    print(json.dumps({s.step_key: round(s.end_time - s.start_time, 1) for s in i.get_run_step_stats(run.run_id)
                      if s.step_key in ("raw_billing", "finops_dbt_models")}))
"""


def child(variant: str, folder: str, work: str, days: str, code: str) -> None:
    started = time.perf_counter()
    run = {"aggregate": run_aggregate, "copy": run_copy, "pipeline": run_pipeline}.get(variant)
    result = run(Path(folder), Path(work), int(days)) if run else run_dagster(Path(folder), Path(work), int(days), Path(code))
    result.setdefault("seconds", round(time.perf_counter() - started, 2))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    result["peak_mb"] = round(next(int(line.split()[1]) for line in open("/proc/self/status")
                                   if line.startswith("VmHWM")) / 1024)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--layout", nargs="+", default=["monthly", "daily"], choices=["monthly", "daily"])
    parser.add_argument("--format", nargs="+", default=["parquet"], choices=["parquet", "csv"])
    parser.add_argument("--variants", nargs="+", default=["aggregate", "copy", "pipeline", "dagster"])
    parser.add_argument("--old", type=Path, help="another code tree to run pipeline and dagster with too")
    args = parser.parse_args()
    trees = [("new", REPO)] + ([("old", args.old.resolve())] if args.old else [])
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in args.format:
            for layout in args.layout:
                folder = Path(tmp) / f"{layout}-{fmt}"
                t = time.perf_counter()
                generate(folder, args.rows, args.days, layout, fmt)
                size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                files = sum(1 for p in folder.rglob("*") if p.is_file())
                print(f"\n{args.rows:,} line items over {args.days} days, {layout}: {files} {fmt} file(s), "
                      f"{size / 2**20:,.0f} MiB (generated in {time.perf_counter() - t:.0f} s)", flush=True)
                print(f"{'variant':<16} {'wall s':>8} {'peak MiB':>9} {'vs copy':>8}  total (reconciles)  steps")
                copy_s, expected = None, None
                for variant in args.variants:
                    for label, code in (trees if variant in ("pipeline", "dagster") else trees[:1]):
                        work = Path(tmp) / f"work-{layout}-{fmt}-{variant}-{label}"
                        work.mkdir()
                        env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
                        out = subprocess.run([sys.executable, __file__, "--child", variant, str(folder), str(work),
                                              str(args.days), str(code)], capture_output=True, text=True, env=env, cwd=code)
                        name = variant if len(trees) == 1 or variant not in ("pipeline", "dagster") else f"{variant} ({label})"
                        if out.returncode:
                            print(f"{name:<16} failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}", flush=True)
                            continue
                        r = json.loads(out.stdout.strip().splitlines()[-1])
                        copy_s = r["seconds"] if variant == "copy" else copy_s
                        expected = r["total"] if variant == "aggregate" else expected
                        ratio = f"{r['seconds'] / copy_s:.1f}x" if copy_s else "-"
                        check = "" if expected is None else (" yes" if r["total"] == expected else " NO")
                        peak = "-" if variant == "dagster" else f"{r['peak_mb']:,}"  # its own processes, not measured
                        print(f"{name:<16} {r['seconds']:>8.2f} {peak:>9} {ratio:>8}  {r['total']}{check}  "
                              f"{r.get('steps', '')}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
    else:
        main()
