"""Stage 1: billing line items into DuckDB."""

import hashlib
import json
from datetime import timedelta

import duckdb as duckdb_lib
from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)
from dagster_duckdb import DuckDBResource

from finops_pipeline.partitions import GRAIN, PARTITIONED_STAGES, billing_partitions
from finops_pipeline.resources import BillingSourceResource
from finops_pipeline.sources.staging import changed_days, contiguous_ranges, day_fingerprints, discover
from finops_pipeline.sources.validation import BillingDataError
from finops_pipeline.storage import connect, ensure_table, utc_bounds


# Marks the runs that reload restated days, for people reading the run list.
RESTATEMENT_TAG = {"finops/reason": "restatement"}


@asset(
    partitions_def=billing_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    group_name="ingest",
    kinds={"duckdb", "python"},
    owners=["team:finops"],
    pool="duckdb",
    metadata={"dagster/table_name": "main.raw_billing"},
)
def raw_billing(
    context: AssetExecutionContext, duckdb: DuckDBResource, billing_source: BillingSourceResource
) -> MaterializeResult:
    """FOCUS line items from the configured billing sources (FINOPS_SOURCE: the demo bill, FOCUS
    export files, AWS Cost Explorer), one partition per charge day (or hour) in UTC; every row
    keeps its source and file (and row number, except for clean CSV files). Each source's batch is validated, then replaces that source's rows for the window
    in one transaction: a bad row fails the source whole (its rows land in
    `raw_billing_quarantine`, the error names file, column and row count) and never touches
    another source's data."""
    window = context.partition_time_window
    start, end = GRAIN.period(window.start), GRAIN.period(window.end)
    in_window = "ChargePeriodStart >= ?::TIMESTAMPTZ AND ChargePeriodStart < ?::TIMESTAMPTZ"
    bounds = utc_bounds(start, end)
    loaded, failures = {}, []
    with connect(duckdb) as con:
        ensure_table(con, "raw_billing")
        for source in billing_source.names:
            try:
                loaded[source] = billing_source.load(con, source, start, end)
            except (BillingDataError, duckdb_lib.Error) as exc:
                failures.append(f"source {source}: {exc}")
        # Rows of a source that is no longer configured leave the window too.
        con.execute(f"DELETE FROM raw_billing WHERE x_Source NOT IN (SELECT unnest(?::VARCHAR[])) AND {in_window}",
                    [billing_source.names, *bounds])
        # Summaries come from the table just written, not from the source files again.
        by_category = dict(con.execute(
            f"SELECT ChargeCategory, round(sum(BilledCost), 2)::DOUBLE FROM raw_billing WHERE {in_window} GROUP BY 1 ORDER BY 1",
            bounds,
        ).fetchall())
        files = con.execute(f"SELECT count(DISTINCT x_SourceFile) FROM raw_billing WHERE {in_window}", bounds).fetchone()[0]
    if failures:
        # The other sources' rows are written; the partition still fails so nobody mistakes it for complete.
        raise BillingDataError(" | ".join(failures))
    return MaterializeResult(
        metadata={
            "dagster/row_count": sum(loaded.values()),
            "rows_by_source": MetadataValue.json(loaded),
            "files": files,
            "periods": len(GRAIN.periods(start, end)),
            "billed_cost_by_category": MetadataValue.json(by_category),
        }
    )


@sensor(
    asset_selection=PARTITIONED_STAGES,
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Reloads the days a provider restated: when FOCUS export files change, requests "
    "exactly the changed days, one single run per block of consecutive days.",
)
def focus_restatements_sensor(context: SensorEvaluationContext, billing_source: BillingSourceResource):
    if "focus" not in billing_source.names:
        return SkipReason("FINOPS_SOURCE does not include focus: no export files to watch")
    if not billing_source.focus_path:
        return SkipReason("FINOPS_SOURCE includes focus but FINOPS_FOCUS_PATH is not set")
    state = json.loads(context.cursor) if context.cursor else None
    known = (state or {}).get("files", {})
    files = {}
    with duckdb_lib.connect() as con:
        for path in discover(billing_source.focus_path):
            stat = path.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            entry = known.get(str(path))
            if entry and entry["stamp"] == stamp:
                days = entry["days"]  # unchanged file: no need to read it again
            else:
                try:
                    days = day_fingerprints(con, path)
                except BillingDataError as exc:
                    # The load will fail on it with the full message; nothing to compare yet.
                    context.log.warning(str(exc))
                    continue
            files[str(path)] = {"stamp": stamp, "days": days}
    cursor = json.dumps({"files": files}, sort_keys=True)
    if state is None:
        # First look: record what is there; the initial load is the user's backfill.
        return SensorResult(skip_reason=SkipReason(f"Watching {len(files)} export file(s)"), cursor=cursor)
    valid = set(billing_partitions.get_partition_keys())
    changed = changed_days({f: e["days"] for f, e in known.items()}, {f: e["days"] for f, e in files.items()})
    # Hourly partitions: every hour of a changed day (the fingerprints are per day).
    fmt = "%Y-%m-%d-%H:%M" if GRAIN.name == "hourly" else "%Y-%m-%d"
    requests = []
    for first, last in contiguous_ranges(changed):
        keys = [f"{p:{fmt}}" for p in GRAIN.periods(first, last + timedelta(days=1))]
        keys = [k for k in keys if k in valid]
        if not keys:
            continue
        requests.append(RunRequest(
            run_key=f"restatement-{keys[0]}-{keys[-1]}-{hashlib.sha256(cursor.encode()).hexdigest()[:12]}",
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
                **RESTATEMENT_TAG,
            },
        ))
    return SensorResult(run_requests=requests, cursor=cursor)
