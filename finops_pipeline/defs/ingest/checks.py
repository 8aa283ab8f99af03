"""Ingest: what must hold of the line items before anything is scored."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue, asset_check

from finops_pipeline.defs.partitions import WAREHOUSE_POOL
from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.warehouse.queries import negative_usage


@asset_check(asset=AssetKey("raw_billing"), pool=WAREHOUSE_POOL, blocking=True,
             description="No usage line item costs less than nothing unless it is a Correction: a flipped sign would "
             "read as a drop, or hide a spike. Blocking: the run stops before forecasts and anomalies.")
def usage_is_not_negative(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        found = negative_usage(con)
    return AssetCheckResult(
        passed=not found,
        severity=AssetCheckSeverity.ERROR,
        metadata={"line_items": sum(n for _, n, _ in found),
                  "by_file": MetadataValue.json({file: {"line_items": n, "effective_cost": round(cost, 2)}
                                                 for file, n, cost in found[:20]})},
    )


INGEST_CHECKS = [usage_is_not_negative]
