"""Ingest: billing line items from every configured source into `raw_billing`."""

from datetime import datetime, timezone

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from finops_pipeline.defs.partitions import WAREHOUSE_POOL, billing_partitions
from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.errors import BillingDataError
from finops_pipeline.settings import Settings
from finops_pipeline.sources.base import Window
from finops_pipeline.sources.load import load_source
from finops_pipeline.sources.registry import build_sources
from finops_pipeline.warehouse.queries import drop_unconfigured_sources, negative_usage, window_summary

# On a run that was allowed to delete days, so the run list shows it.
ALLOW_DELETES_TAG = "finops/allow-deletes"


class RawBillingConfig(Config):
    allow_deletes: bool = Field(
        default=False,
        description="Let this run empty days that held line items when no export file covers them any more. "
        "Off, such a run fails and names the days and files instead: an export that vanished (lifecycle expiry, "
        "an unmounted share) is not a refund.",
    )


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
    def raw_billing(context: AssetExecutionContext, config: RawBillingConfig, warehouse: WarehouseResource) -> MaterializeResult:
        """FOCUS line items from the configured billing sources (FINOPS_SOURCE: the demo bill, FOCUS
        export files, AWS Cost Explorer, or any installed source plugin), one partition per UTC
        charge day; every row keeps its source and file (and row number, except for clean CSV
        files). Export files are sorted into deliveries first (table `billing_deliveries`):
        duplicates and earlier versions of a billing period are recorded, not summed. Each
        source's rows then replace its rows for the window in one transaction per source, all or
        nothing per billing month: a bad cost rejects its month (which keeps what it held; the
        error names month, file, column and row count), a bad quantity or tag is loaded as NULL;
        every bad row lands in `raw_billing_quarantine`. A day that held rows is never emptied
        without evidence (a manifest, or the allow_deletes config)."""
        if config.allow_deletes:
            context.instance.add_run_tags(context.run_id, {ALLOW_DELETES_TAG: "true"})
        start, end = grain.window(*context.partition_time_window, datetime.now(timezone.utc))
        window = Window(start, end, grain)
        loaded, failures = {}, []
        with warehouse.connect() as con:
            for source in sources:
                try:
                    loaded[source.name] = load_source(con, source, window, config.allow_deletes)
                except (BillingDataError, duckdb.Error) as exc:
                    failures.append(f"source {source.name}: {exc}")
            drop_unconfigured_sources(con, [s.name for s in sources], start, end)
            summary = window_summary(con, start, end)
            refunds = negative_usage(con, start, end)
        for name, result in loaded.items():
            failures += result.verdict.errors(name)
            for warning in result.warnings:
                context.log.warning(f"source {name}: {warning}")
        if failures:
            # The rest is written; the partition still fails so nobody mistakes it for complete.
            raise BillingDataError(" | ".join(failures))
        return MaterializeResult(
            metadata={
                "dagster/row_count": sum(r.rows for r in loaded.values()),
                "rows_by_source": MetadataValue.json({name: r.rows for name, r in loaded.items()}),
                "files": summary.files,
                "deliveries": MetadataValue.json({name: r.deliveries for name, r in loaded.items() if r.deliveries}),
                "not_counted": MetadataValue.json([w for r in loaded.values() for w in r.warnings][:50]),
                "new_or_changed_files": MetadataValue.json([f for r in loaded.values() for f in r.changed_files][:50]),
                "loaded_with_null_fields": sum(r.verdict.nulled for r in loaded.values()),
                "unplaced_rows": sum(r.verdict.unplaced for r in loaded.values()),
                "negative_usage": MetadataValue.json({file: {"line_items": n, "effective_cost": round(cost, 2)}
                                                      for file, n, cost in refunds[:20]}),
                "periods": len(grain.periods(start, end)),
                "billed_cost_by_category": MetadataValue.json(summary.billed_cost_by_category),
            }
        )

    return raw_billing
