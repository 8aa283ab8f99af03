"""Stage 1: billing line items into DuckDB."""


from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from finops_pipeline.partitions import daily_partitions
from finops_pipeline.resources import BillingSourceResource
from finops_pipeline.sources.validation import validate_line_items
from finops_pipeline.storage import replace_window


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
    """FOCUS 1.2 line items from the configured billing source (FINOPS_SOURCE), one partition per
    charge day in UTC. Writing a partition range replaces it in one transaction: a bad batch
    leaves the table as it was."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    frame = billing_source.line_items(start, end)
    validate_line_items(frame, origin=f"source {billing_source.source!r}, {start}..{end}")
    with duckdb.get_connection() as con:
        replaced = replace_window(
            con,
            "raw_billing",
            frame,
            "ChargePeriodStart >= ?::TIMESTAMPTZ AND ChargePeriodStart < ?::TIMESTAMPTZ",
            [f"{start} 00:00:00+00", f"{end} 00:00:00+00"],
        )
    by_category = frame.groupby("ChargeCategory")["BilledCost"].sum().round(2)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(frame),
            "rows_replaced": replaced,
            "source": billing_source.source,
            "days": (end - start).days,
            "billed_cost_by_category": MetadataValue.json({k: float(v) for k, v in by_category.items()}),
        }
    )
