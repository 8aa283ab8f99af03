"""Stage 1: billing line items into DuckDB."""


import hashlib
import json

import duckdb as duckdb_lib
from dagster import (
    AssetExecutionContext,
    AssetSelection,
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

from finops_pipeline.partitions import daily_partitions
from finops_pipeline.resources import BillingSourceResource
from finops_pipeline.sources.focus_files import changed_days, contiguous_ranges, day_fingerprints, discover
from finops_pipeline.sources.validation import BillingDataError, validate_staged
from finops_pipeline.storage import connect, replace_window


@asset(
    partitions_def=daily_partitions,
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
    """FOCUS line items from the configured billing source (FINOPS_SOURCE: the demo bill, or FOCUS
    export files), one partition per charge day in UTC. Every batch is validated first; a bad row
    fails the whole partition, lands in `raw_billing_quarantine`, and the error names the file,
    column and row count. Writing a partition range replaces it in one transaction."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    with connect(duckdb) as con:
        billing_source.stage(con, start, end)
        rows = validate_staged(con, start, end)
        replaced = replace_window(
            con,
            "raw_billing",
            "_incoming",
            "ChargePeriodStart >= ?::TIMESTAMPTZ AND ChargePeriodStart < ?::TIMESTAMPTZ",
            [f"{start} 00:00:00+00", f"{end} 00:00:00+00"],
        )
        by_category = dict(con.execute(
            "SELECT ChargeCategory, round(sum(BilledCost), 2)::DOUBLE FROM _incoming GROUP BY 1 ORDER BY 1"
        ).fetchall())
        files = con.execute("SELECT count(DISTINCT x_SourceFile) FROM _incoming").fetchone()[0]
    return MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "rows_replaced": replaced,
            "source": billing_source.source,
            "files": files,
            "days": (end - start).days,
            "billed_cost_by_category": MetadataValue.json(by_category),
        }
    )


@sensor(
    asset_selection=AssetSelection.groups("ingest", "transform", "detect"),
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.RUNNING,
    description="Reloads the days a provider restated: when FOCUS export files change, requests "
    "exactly the changed days, one single run per block of consecutive days.",
)
def focus_restatements_sensor(context: SensorEvaluationContext, billing_source: BillingSourceResource):
    if billing_source.source != "focus" or not billing_source.focus_path:
        return SkipReason("FINOPS_SOURCE is not focus: no export files to watch")
    state = json.loads(context.cursor) if context.cursor else None
    known = (state or {}).get("files", {})
    files, fingerprints = {}, {}
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
            fingerprints[str(path)] = days
    cursor = json.dumps({"files": files}, sort_keys=True)
    if state is None:
        # First look: record what is there; the initial load is the user's backfill.
        return SensorResult(skip_reason=SkipReason(f"Watching {len(files)} export file(s)"), cursor=cursor)
    valid = set(daily_partitions.get_partition_keys())
    days = {d for d in changed_days({f: e["days"] for f, e in known.items()}, fingerprints) if d.isoformat() in valid}
    requests = [
        RunRequest(
            run_key=f"restatement-{first}-{last}-{hashlib.sha256(cursor.encode()).hexdigest()[:12]}",
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
                "finops/reason": "restatement",
            },
        )
        for first, last in contiguous_ranges(days)
    ]
    return SensorResult(run_requests=requests, cursor=cursor)
