"""Detect: what must hold of the forecasts and anomalies."""

from dagster import AssetCheckResult, AssetChecksDefinition, AssetKey, asset_check

from finops_pipeline.defs.partitions import WAREHOUSE_POOL
from finops_pipeline.defs.resources import WarehouseResource


@asset_check(asset=AssetKey("cost_forecasts"), pool=WAREHOUSE_POOL,
             description="Every band is ordered and non-negative: 0 ≤ lower ≤ expected ≤ upper.")
def forecast_bands_are_ordered(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        bad = con.execute(
            "SELECT count(*) FROM cost_forecasts WHERE NOT (0 <= lower_bound AND lower_bound <= expected_cost + 1e-9 "
            "AND expected_cost <= upper_bound + 1e-9)"
        ).fetchone()[0]
    return AssetCheckResult(passed=bad == 0, metadata={"bad_rows": int(bad)})


@asset_check(asset=AssetKey("anomalies"), pool=WAREHOUSE_POOL,
             description="Anomalies a forecast band flagged come only from series and periods that had a forecast.")
def anomalies_have_forecasts(warehouse: WarehouseResource) -> AssetCheckResult:
    with warehouse.connect() as con:
        orphans = con.execute(
            """SELECT count(*) FROM anomalies a WHERE a.detectors LIKE '%_interval%' AND NOT EXISTS (
                   SELECT 1 FROM cost_forecasts f WHERE f.horizon = 0 AND f.series_key = a.series_key
                   AND f.granularity = a.granularity AND f.target_period = a.period_start)"""
        ).fetchone()[0]
    return AssetCheckResult(passed=orphans == 0, metadata={"orphans": int(orphans)})


DETECT_CHECKS: list[AssetChecksDefinition] = [forecast_bands_are_ordered, anomalies_have_forecasts]
