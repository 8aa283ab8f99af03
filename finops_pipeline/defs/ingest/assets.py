"""Ingest: billing line items from every configured source into `raw_billing`."""

from datetime import datetime, timezone

import duckdb
from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy, MaterializeResult, MetadataValue, asset

from finops_pipeline.defs.partitions import WAREHOUSE_POOL, billing_partitions
from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.errors import BillingDataError
from finops_pipeline.settings import Settings
from finops_pipeline.sources.base import Window
from finops_pipeline.sources.load import load_source
from finops_pipeline.sources.registry import build_sources
from finops_pipeline.warehouse.queries import drop_unconfigured_sources, window_summary


def build_raw_billing(settings: Settings) -> AssetsDefinition:
    grain = settings.grain
    sources = build_sources(settings)

    @asset(
        partitions_def=billing_partitions(settings),
        backfill_policy=BackfillPolicy.single_run(),
        group_name="ingest",
        kinds={"python"},
        pool=WAREHOUSE_POOL,
        metadata={"dagster/table_name": "main.raw_billing"},
    )
    def raw_billing(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
        """FOCUS line items from the configured billing sources (FINOPS_SOURCE: the demo bill, FOCUS
        export files, AWS Cost Explorer, or any installed source plugin), one partition per UTC
        charge day; every row keeps its source and file (and row number, except for clean CSV
        files). Each source's batch is validated, then replaces that source's rows for the window
        in one transaction: a bad row fails the source whole (its rows land in
        `raw_billing_quarantine`, the error names file, column and row count) and never touches
        another source's data."""
        start, end = grain.window(*context.partition_time_window, datetime.now(timezone.utc))
        window = Window(start, end, grain)
        loaded, failures = {}, []
        with warehouse.connect() as con:
            for source in sources:
                try:
                    loaded[source.name] = load_source(con, source, window)
                except (BillingDataError, duckdb.Error) as exc:
                    failures.append(f"source {source.name}: {exc}")
            drop_unconfigured_sources(con, [s.name for s in sources], start, end)
            summary = window_summary(con, start, end)
        if failures:
            # The other sources' rows are written; the partition still fails so nobody mistakes it for complete.
            raise BillingDataError(" | ".join(failures))
        return MaterializeResult(
            metadata={
                "dagster/row_count": sum(loaded.values()),
                "rows_by_source": MetadataValue.json(loaded),
                "files": summary.files,
                "periods": len(grain.periods(start, end)),
                "billed_cost_by_category": MetadataValue.json(summary.billed_cost_by_category),
            }
        )

    return raw_billing
