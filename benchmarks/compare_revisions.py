"""Compare two code trees on the labelled-bill detection benchmark (or the scale benchmark).

The trees (an old git worktree and the new checkout, say) run one after the other on this machine,
with the same venv: each tree's code is loaded via PYTHONPATH=<tree> with cwd=<tree>, with the
tree's own dagster.yaml, into its own Dagster instance and DuckDB under the work folder:

    WORKDIR/focus/          the labelled bill (detection_benchmark's), generated once for both
    WORKDIR/old/, new/      each tree's instance, DuckDB, dbt artifacts and run.json (tree, commit,
                            range, seed, the bill's digest, the backfill's wall time)
    WORKDIR/scale/...       the same for --scale

For each tree it prints the backfill's wall time and the scores of what that tree alerts on
(recall, incident precision, false alarms per series-month: detection_benchmark's pipeline rows,
scored by detection_metrics), each tree's anomalies grouped into incidents by that tree's own
``summarize``. Then it compares the two ``anomalies`` tables row by row (by anomaly_id) and the
two incident summaries (by incident_id): rows only in A (old), only in B (new), and per column the
rows that differ, with a few examples. Floats match within 1e-6 relative (1e-9 absolute, for
values at zero); NULL matches NULL. Exit status: 0 when the trees agree, 1 when they differ.

* ``--only-old`` / ``--only-new``: backfill and score one tree only (to keep its work folder for a
  later comparison).
* ``--reuse``: a side whose work folder holds a finished run of the same tree, commit, range, seed
  and bill is not run again (its recorded wall time is shown, marked as reused). A tree with
  uncommitted changes is never reused.
* ``--scale``: instead, scale_benchmark's bill (generated once) backfilled by each tree: the wall
  time and each step's time for both.

    python benchmarks/compare_revisions.py --old DIR --new DIR [--start 2024-01-01] [--end 2026-01-01]
        [--seed 7] [--workdir DIR] [--only-old | --only-new] [--reuse]
        [--scale [--accounts 100] [--services 30] [--days 90]]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks import detection_benchmark, detection_metrics, labelled_bill, scale_benchmark  # noqa: E402
from benchmarks.harness import TempInstance, backfill_focus, imported_from  # noqa: E402

SIDES = ("old", "new")
ANOMALY_COLUMNS = ["period_start", "series_key", "severity", "detectors", "actual_cost", "expected_cost", "lower_bound",
                   "upper_bound", "impact_usd", "incident_id", "explained_by"]
INCIDENT_COLUMNS = ["series_key", "direction", "start_period", "peak_period", "latest_period", "periods",
                    "total_excess_usd", "peak_anomaly_id", "severity", "status", "explained_by"]
REL_TOL, ABS_TOL = 1e-6, 1e-9
EXAMPLES = 3
# A side's folder holds only these; anything else there is not ours to delete.
SIDE_CONTENTS = {"dagster_home", "data", "dbt_target", "dbt_logs", "run.json", "incidents.pkl"}

# Run in a tree (PYTHONPATH=<tree>, cwd=<tree>): its anomalies as its own code groups them into incidents.
SUMMARIZE = """
import sys
import duckdb
import pandas as pd
from finops_pipeline.detection.incidents import summarize
with duckdb.connect(sys.argv[1], read_only=True) as con:
    found = con.execute("SELECT * FROM anomalies").df()
summarize(found, pd.Series(dtype="object")).to_pickle(sys.argv[2])
"""


# --------------------------------------------------------------------------------------------
# The trees and their runs
# --------------------------------------------------------------------------------------------


def revision(tree: Path) -> tuple[str, bool]:
    """The tree's commit (short) and whether it has uncommitted changes to tracked files."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "no git"
    return commit, bool(git("status", "--porcelain", "--untracked-files=no"))


def digest(folder: Path) -> str:
    """A hash of the bill's files, so a reused run is known to be on the same bill."""
    sha = hashlib.sha256()
    for path in sorted(folder.glob("*.parquet")):
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def clear_bill(folder: Path) -> None:
    """Remove a previous bill's exports (a longer range would leave extra months behind)."""
    for path in folder.glob("focus-*.parquet"):
        path.unlink()


def clear_side(folder: Path) -> None:
    if folder.exists():
        unknown = sorted(p.name for p in folder.iterdir() if p.name not in SIDE_CONTENTS)
        if unknown:
            raise SystemExit(f"{folder} holds files this script did not write ({', '.join(unknown[:5])}): "
                             "not deleting it; choose another --workdir")
        shutil.rmtree(folder)


def run_side(side: str, tree: Path, folder: Path, bill: Path, first: date, last: date, key: dict,
             reuse: bool) -> dict:
    """Backfill ``tree`` over first...last on ``bill`` into ``folder`` (or reuse the run already
    there); the run's record (run.json), with ``reused``."""
    record_path = folder / "run.json"
    commit, dirty = revision(tree)
    key = {**key, "tree": str(tree), "commit": commit, "first": first.isoformat(), "last": last.isoformat()}
    if reuse and not dirty and record_path.exists():
        record = json.loads(record_path.read_text())
        if {k: record.get(k) for k in key} == key and not record.get("dirty"):
            print(f"{side}: {tree} at {commit}: reusing the run of {record['finished']} in {folder}", flush=True)
            return {**record, "reused": True}
    clear_side(folder)
    env = TempInstance(folder).env(first, code=tree)
    code = imported_from(env, tree)  # fail now if the tree does not import, not after generating anything
    state = "with uncommitted changes" if dirty else "clean"
    print(f"{side}: backfilling {first}...{last} with {code} ({commit}, {state})", flush=True)
    load_before = os.getloadavg()[0]
    wall = backfill_focus(folder, bill, first, last, tree)
    record = {**key, "dirty": dirty, "backfill_s": round(wall, 1), "cores": os.cpu_count(),
              "load_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{side}: backfill {wall:.0f} s", flush=True)
    return {**record, "reused": False}


def tree_incidents(tree: Path, folder: Path) -> pd.DataFrame:
    """The tree's anomalies grouped into incidents by the tree's own code (this checkout's
    ``summarize`` if that tree has none)."""
    db, out = TempInstance(folder).duckdb_path, folder / "incidents.pkl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([sys.executable, "-c", SUMMARIZE, str(db), str(out)], env=env, cwd=tree,
                            capture_output=True, text=True)
    if result.returncode == 0:
        return pd.read_pickle(out)
    print(f"warning: {tree} could not summarize its incidents ({result.stderr.strip().splitlines()[-1:]}); "
          "using this checkout's summarize", flush=True)
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute("SELECT * FROM anomalies").df()
    return detection_benchmark.summarize(found, pd.Series(dtype="object"))


def read_anomalies(folder: Path) -> pd.DataFrame:
    with duckdb.connect(str(TempInstance(folder).duckdb_path), read_only=True) as con:
        return con.execute("SELECT * FROM anomalies").df()


# --------------------------------------------------------------------------------------------
# Row-by-row comparison
# --------------------------------------------------------------------------------------------


def _missing(value) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def differs(a, b) -> bool:
    """Whether two cells differ: floats beyond REL_TOL relative (ABS_TOL absolute), others at all."""
    if _missing(a) or _missing(b):
        return _missing(a) != _missing(b)
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        try:
            return not math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)
        except (TypeError, ValueError):
            return True
    return bool(a != b)


def compare(a: pd.DataFrame, b: pd.DataFrame, key: str, columns: list[str]) -> dict:
    """Rows of ``a`` and ``b`` matched by ``key``: the keys only in a, only in b, and per column the
    (key, a's value, b's value) of the matched rows that differ; columns missing on a side."""
    a, b = a.set_index(key), b.set_index(key)
    common = a.index.intersection(b.index)
    result = {"rows": (len(a), len(b)), "only_a": a.index.difference(b.index), "only_b": b.index.difference(a.index),
              "common": len(common), "differing": {}, "missing_columns": {}}
    for column in columns:
        absent = [side for side, frame in (("A", a), ("B", b)) if column not in frame.columns]
        if absent:
            result["missing_columns"][column] = absent
            continue
        pairs = zip(common, a.loc[common, column], b.loc[common, column])
        result["differing"][column] = [(k, x, y) for k, x, y in pairs if differs(x, y)]
    rows_differing = {k for diffs in result["differing"].values() for k, _, _ in diffs}
    result["rows_differing"] = len(rows_differing)
    return result


def _show(value) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return repr(value.item() if isinstance(value, np.generic) else value)


def print_comparison(title: str, diff: dict, a: pd.DataFrame, b: pd.DataFrame, key: str, describe: list[str]) -> None:
    rows_a, rows_b = diff["rows"]
    print(f"\n{title}: A (old) {rows_a:,} rows, B (new) {rows_b:,} rows; only in A: {len(diff['only_a']):,}, "
          f"only in B: {len(diff['only_b']):,}, in both: {diff['common']:,}, of which differing: "
          f"{diff['rows_differing']:,}")
    for column, sides in diff["missing_columns"].items():
        print(f"  column {column}: missing in {' and '.join(sides)}, not compared")
    counts = {c: len(v) for c, v in diff["differing"].items()}
    if any(counts.values()):
        print("  | column | rows differing |\n  |---|---:|")
        for column, n in counts.items():
            print(f"  | {column} | {n:,} |")
    for column, diffs in diff["differing"].items():
        for k, x, y in diffs[:EXAMPLES]:
            print(f"    {column} of {k}: A {_show(x)} / B {_show(y)}")
    for label, keys, frame in (("only in A", diff["only_a"], a), ("only in B", diff["only_b"], b)):
        if len(keys):
            shown = frame.set_index(key).loc[keys[:EXAMPLES], [c for c in describe if c in frame.columns]]
            print(f"  {label}, e.g.:")
            for k, row in shown.iterrows():
                print(f"    {k}: " + ", ".join(f"{c}={_show(v)}" for c, v in row.items()))


def differences(diff: dict) -> int:
    return len(diff["only_a"]) + len(diff["only_b"]) + diff["rows_differing"]


# --------------------------------------------------------------------------------------------
# The two benchmarks
# --------------------------------------------------------------------------------------------


def detection(args, trees: dict[str, Path]) -> int:
    work = args.workdir
    items, labels = labelled_bill.generate(args.start, args.end, args.seed)
    bill = work / "focus"
    clear_bill(bill)
    labelled_bill.write_focus(items, bill)
    first, last = args.start, args.end - timedelta(days=1)
    print(f"Labelled bill: {len(items):,} line items, {first}...{last}, seed {args.seed}; "
          f"{int((~labels.benign).sum())} anomaly windows, in {bill}", flush=True)
    key = {"benchmark": "detection", "seed": args.seed, "bill": digest(bill)}

    runs, scores = {}, {}
    for side, tree in trees.items():
        runs[side] = run_side(side, tree, work / side, bill, first, last, key, args.reuse)
        incidents = tree_incidents(tree, work / side)
        flags = detection_benchmark.pipeline_flags(TempInstance(work / side).duckdb_path, incidents)
        scores[side] = (detection_benchmark.score_pipeline(flags, labels, args.start, args.end), incidents)

    scored_from, scored_last = detection_benchmark.scored_window(args.start, args.end)
    print(f"\nScored {scored_from}..{scored_last} (detection_benchmark's pipeline rows; false alarms per "
          "sub-account × service series-month):")
    table = {}
    for side, run in runs.items():
        tag = f"{side} {run['commit']}{' +changes' if run.get('dirty') else ''}"
        for row, result in scores[side][0].items():
            table[f"{tag}: {row.removeprefix('finops-pipeline: ')}"] = result
    print(detection_metrics.format_table(table))
    print()
    for side, run in runs.items():
        alerts = scores[side][0][detection_benchmark.PIPELINE_ROWS[0]]
        reused = f" (reused: measured {run['finished']})" if run["reused"] else ""
        print(f"{side} ({run['tree']} at {run['commit']}): backfill {run['backfill_s']:.0f} s on {run['cores']} cores"
              f"{reused}; alerts: recall {_pct(alerts['recall'])} ({alerts['caught']}/{alerts['labels']}), "
              f"incident precision {_pct(alerts['precision'])}, false alarms / series-month "
              f"{_number(alerts['false_alarms_per_series_month'], '{:.4f}')}, {alerts['incidents']} incidents "
              f"({alerts['false_incidents']} false)")
    if len(runs) < 2:
        return 0

    found = {side: read_anomalies(work / side) for side in runs}
    anomalies = compare(found["old"], found["new"], "anomaly_id", ANOMALY_COLUMNS)
    print_comparison("anomalies", anomalies, found["old"], found["new"], "anomaly_id",
                     ["period_start", "series_key", "severity", "impact_usd"])
    summaries = {side: scores[side][1] for side in runs}
    incidents = compare(summaries["old"], summaries["new"], "incident_id", INCIDENT_COLUMNS)
    print_comparison("incidents (each tree's summarize)", incidents, summaries["old"], summaries["new"], "incident_id",
                     ["start_period", "series_key", "severity", "total_excess_usd", "explained_by"])
    total = differences(anomalies) + differences(incidents)
    print(f"\n{'no differences' if total == 0 else f'{total:,} differing rows'} between old and new")
    return 0 if total == 0 else 1


def scale(args, trees: dict[str, Path]) -> int:
    work = args.workdir / "scale"
    bill = work / "focus"
    clear_bill(bill)
    began = time.perf_counter()
    rows = scale_benchmark.generate(bill, args.accounts, args.services, args.days)
    print(f"Scale bill: {rows:,} line items, {args.accounts * args.services:,} series, {args.days} days "
          f"(generated in {time.perf_counter() - began:.0f} s), in {bill}", flush=True)
    key = {"benchmark": "scale", "accounts": args.accounts, "services": args.services, "days": args.days,
           "bill": digest(bill)}
    first, last = scale_benchmark.START, scale_benchmark.START + timedelta(days=args.days - 1)
    runs = {side: run_side(side, tree, work / side, bill, first, last, key, args.reuse) for side, tree in trees.items()}
    steps = {side: dict(scale_benchmark.step_seconds(work / side)) for side in runs}
    names = list(dict.fromkeys(step for s in steps.values() for step in s))
    print("\n| | " + " | ".join(f"{side} {run['commit']}" for side, run in runs.items()) + " |")
    print("|---|" + "---:|" * len(runs))
    print("| backfill wall time (s) | " + " | ".join(f"{run['backfill_s']:.0f}" + (" (reused)" if run["reused"] else "")
                                                   for run in runs.values()) + " |")
    for step in names:
        print(f"| {step} | " + " | ".join(_seconds(steps[side].get(step)) for side in runs) + " |")
    return 0


def _number(value: float | None, pattern: str) -> str:
    return "–" if value is None else pattern.format(value)


def _pct(value: float | None) -> str:
    return _number(value, "{:.0%}")


def _seconds(value: float | None) -> str:
    return _number(value, "{:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="the old code tree (a git worktree of the old commit, say)")
    parser.add_argument("--new", type=Path, help="the new code tree")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 1, 1), help="exclusive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, help="bills, instances and DuckDBs (default: a new temporary folder)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--only-old", action="store_true", help="run the old tree only, no comparison")
    only.add_argument("--only-new", action="store_true", help="run the new tree only, no comparison")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a side's finished run of the same clean commit, range, seed and bill")
    parser.add_argument("--scale", action="store_true", help="the scale benchmark instead of the detection benchmark")
    parser.add_argument("--accounts", type=int, default=100, help="--scale: sub-accounts (default 100)")
    parser.add_argument("--services", type=int, default=30, help="--scale: services per sub-account (default 30)")
    parser.add_argument("--days", type=int, default=90, help="--scale: days (default 90)")
    args = parser.parse_args()

    wanted = ["old"] if args.only_old else ["new"] if args.only_new else list(SIDES)
    trees = {side: getattr(args, side) for side in wanted}
    missing = [f"--{side}" for side, tree in trees.items() if tree is None]
    if missing:
        parser.error(f"{' and '.join(missing)} required")
    for side, tree in trees.items():
        if not (tree / "finops_pipeline").is_dir():
            parser.error(f"--{side} {tree}: no finops_pipeline/ there")
    trees = {side: tree.resolve() for side, tree in trees.items()}
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="finops-compare-"))).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {args.workdir}; " + ", ".join(f"{side}: {tree}" for side, tree in trees.items()), flush=True)
    status = scale(args, trees) if args.scale else detection(args, trees)
    print(f"\nwork folder kept: {args.workdir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
