"""Ingest: what must hold of the line items before anything is scored."""

from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue, asset_check

from finops_pipeline.defs.partitions import WAREHOUSE_POOL
from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.warehouse.queries import counted_deliveries, negative_usage, quarantined_fields

EXPORT_FILES_CHECK = "export_files_present"


@asset_check(asset=AssetKey("raw_billing"), pool=WAREHOUSE_POOL,
             description="Usage line items that cost less than nothing and are not Corrections: FOCUS allows them "
             "(a refund booked as usage), so they are loaded and scored like any other change; a warning, because a "
             "flipped sign in an export looks the same.")
def usage_is_not_negative(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        found = negative_usage(con)
    return AssetCheckResult(
        passed=not found,
        severity=AssetCheckSeverity.WARN,
        metadata={"line_items": sum(n for _, n, _ in found),
                  "by_file": MetadataValue.json({file: {"line_items": n, "effective_cost": round(cost, 2)}
                                                 for file, n, cost in found[:20]})},
    )


@asset_check(asset=AssetKey("raw_billing"), pool=WAREHOUSE_POOL,
             description="Every field of every loaded line item parsed. A quantity, tag or billing-period timestamp "
             "that does not is loaded as NULL (so it never hides a day's cost) and its row is kept in "
             "raw_billing_quarantine with outcome 'loaded_as_null'; this warns while any are there.")
def fields_parse(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        found = quarantined_fields(con)
    return AssetCheckResult(
        passed=not found,
        severity=AssetCheckSeverity.WARN,
        metadata={"line_items": sum(n for *_, n in found),
                  "by_file_and_column": MetadataValue.json([{"file": f, "column": c, "reason": r, "line_items": n}
                                                            for f, c, r, n in found[:50]])},
    )


@asset_check(asset=AssetKey("raw_billing"), name=EXPORT_FILES_CHECK, pool=WAREHOUSE_POOL,
             description="Every export file whose rows are loaded is still there. One that vanished (lifecycle "
             "expiry, an archive move, an unmounted share) leaves its rows loaded, never deleted without evidence; "
             "this warns until the file is back or its days are reloaded with allow_deletes. The restatement "
             "sensor reports it too, as soon as it sees a file go.")
def export_files_present(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        files = counted_deliveries(con)
    missing = sorted(f for f in files if not Path(f).exists())
    return AssetCheckResult(
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"files": len(files), "missing": MetadataValue.json(missing[:50])},
    )


INGEST_CHECKS = [usage_is_not_negative, fields_parse, export_files_present]
