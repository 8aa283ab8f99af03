"""Stage 1: billing line items into DuckDB."""


from dagster import AssetExecutionContext, BackfillPolicy, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from finops_pipeline.partitions import daily_partitions
from finops_pipeline.resources import BillingSourceResource
from finops_pipeline.sources.validation import validate_staged
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
