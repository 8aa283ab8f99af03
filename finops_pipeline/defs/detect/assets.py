"""Detect: Prophet forecasts, anomaly scoring and the incident roll-up."""

import base64
from datetime import datetime, timezone

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from finops_pipeline.defs.config import from_run_config, run_config_class
from finops_pipeline.defs.partitions import WAREHOUSE_POOL, billing_partitions
from finops_pipeline.defs.resources import OutboxResource, WarehouseResource
from finops_pipeline.detection.charts import cost_band_chart
from finops_pipeline.detection.forecasting import ForecastConfig
from finops_pipeline.detection.scoring import Thresholds
from finops_pipeline.detection.workflow import forecast_window, measure_quality, roll_up_incidents, score_window
from finops_pipeline.settings import Settings

STG_BILLING = AssetKey("stg_focus__billing")
RAW_BILLING = AssetKey("raw_billing")


def build_detect_assets(settings: Settings) -> list[AssetsDefinition]:
    grain = settings.grain
    partitions = billing_partitions(settings)
    series = AssetKey(grain.series_model)  # the dbt view of every series at the pipeline's grain
    forecast_defaults = ForecastConfig.for_granularity(grain.name)
    threshold_defaults = Thresholds.for_granularity(grain.name)
    ForecastSettings = run_config_class("ForecastSettings", forecast_defaults, exclude=("granularity", "workers"),
                                        doc="Forecast parameters for the launchpad; defaults are the grain's.")
    DetectionSettings = run_config_class("DetectionSettings", threshold_defaults,
                                         doc="Detection thresholds for the launchpad; defaults are the grain's.")

    def window_of(context: AssetExecutionContext):
        return grain.window(*context.partition_time_window, datetime.now(timezone.utc))

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="detect",
        kinds={"prophet", "python"},
        deps=[series],
        pool=WAREHOUSE_POOL,
        metadata={"dagster/table_name": "main.cost_forecasts"},
    )
    def cost_forecasts(context: AssetExecutionContext, config: ForecastSettings, warehouse: WarehouseResource
                       ) -> MaterializeResult:
        """Forecast of Usage EffectiveCost per series (the total, each provider, sub-account,
        service, team and sub-account × service) and period (a day; an hour with
        FINOPS_GRANULARITY=hourly): the expected value and band for the partition's periods.
        Prophet, with the horizon after them, for the series that carry the money; the weekday
        median for the long tail. Each period's fit sees only data from before its refit anchor
        (weekly for days, daily for hours), so backfills match scheduled runs. A level a person
        marked `expected` or `planned` is not clipped from the training data."""
        start, end = window_of(context)
        with warehouse.connect() as con:
            done = forecast_window(con, grain, start, end, from_run_config(forecast_defaults, config))
        predicted, fits = done.rows, done.fits
        today = predicted[predicted["horizon"] == 0]
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(predicted),
                "series_forecast": int(today["series_key"].nunique()),
                "periods": len(grain.periods(start, end)),
                "fits": int(today.groupby(["series_key", "trained_through"]).ngroups) if len(today) else 0,
                # Prophet fits run now, and those reused from an earlier run of the same refit
                # anchor on the same data (the days after a Monday, a re-run).
                "prophet_fits_run": len(fits.ran),
                "prophet_fits_reused": len(fits.used - set(fits.ran)),
                "series_per_model": MetadataValue.json(today.groupby("model")["series_key"].nunique().to_dict()),
                "total_expected_usd": round(float(today.loc[today.series_key == "total", "expected_cost"].sum()), 2),
            }
        )

    @asset(
        partitions_def=partitions,
        backfill_policy=BackfillPolicy.single_run(),
        group_name="detect",
        kinds={"python"},
        # The views it reads (the series, the SKUs' first days, the line items for root causes)
        # and what is under them: reading stg_focus__billing reads raw_billing itself.
        deps=[cost_forecasts, series, AssetKey("sku_first_seen"), AssetKey(grain.cost_table), AssetKey(grain.ai_table),
              AssetKey("gpu_hours"), STG_BILLING, RAW_BILLING],
        pool=WAREHOUSE_POOL,
        metadata={"dagster/table_name": "main.anomalies"},
    )
    def anomalies(context: AssetExecutionContext, config: DetectionSettings, warehouse: WarehouseResource,
                  outbox: OutboxResource) -> MaterializeResult:
        """One row per series and period (day, or hour) whose Usage EffectiveCost fell outside its
        forecast band, confirmed by a robust z-score against the same point of the week and above
        the $ and % floors; or that a rule flagged (a new series or SKU with real spend, a slow
        ramp, a level shift, a weekend billed like a weekday). Each row carries actual, expected,
        band, $ impact, deviation, severity, the detectors that fired, its root cause one level
        finer, and the finer anomaly that explains it, if any (only unexplained ones are
        alerted). Purchase, Tax, Credit and Adjustment rows never raise one."""
        start, end = window_of(context)
        with warehouse.connect() as con:
            scored = score_window(con, grain, start, end, from_run_config(threshold_defaults, config),
                                  forecast_defaults.min_history_days)
        found, unbilled = scored.anomalies, [grain.label(p) for p in scored.unbilled]
        if unbilled:
            context.log.warning(f"No usage line items for {', '.join(unbilled)}: not scored (export late or missing?)")
        png = cost_band_chart(scored.chart_panels, unit=grain.unit)
        chart_path = outbox.path("charts") / f"anomalies_{grain.file_label(start)}_{grain.file_label(end)}.png"
        chart_path.write_bytes(png)
        preview = found[["period_start", "series_key", "actual_cost", "expected_cost", "impact_usd", "deviation_pct", "severity"]]
        preview = preview.reindex(preview["impact_usd"].abs().sort_values(ascending=False).index).head(10)
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(found),
                "new_anomalies": len(scored.new_anomaly_ids),
                "periods_without_billing_data": MetadataValue.json(unbilled),
                "by_severity": MetadataValue.json(found["severity"].value_counts().to_dict()),
                "top_anomalies": MetadataValue.md(preview.assign(period_start=[grain.label(p) for p in preview.period_start])
                                                  .to_markdown(index=False)
                                                  if len(preview) else "No anomalies in this window."),
                "chart": MetadataValue.md(f"![cost vs forecast](data:image/png;base64,{base64.b64encode(png).decode()})"),
                "chart_path": MetadataValue.path(str(chart_path)),
            }
        )

    @asset(
        group_name="detect",
        kinds={"python"},
        deps=[anomalies, cost_forecasts],
        pool=WAREHOUSE_POOL,
        metadata={"dagster/table_name": "main.incidents"},
    )
    def incidents(config: DetectionSettings, warehouse: WarehouseResource) -> MaterializeResult:
        """The anomalous periods of a series that follow each other, rolled up as one incident:
        start, peak, latest, number of periods, total $ excess, severity (its highest period's, or
        what its totals earn: the `incident_*` thresholds), and status (open, or resolved once a
        later period was scored back in its band). A level shift is one incident. Alerts are sent
        per incident."""
        with warehouse.connect() as con:
            table = roll_up_incidents(con, grain, from_run_config(threshold_defaults, config))
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(table),
                "open": int((table["status"] == "open").sum()),
                "by_severity": MetadataValue.json(table["severity"].value_counts().to_dict()),
                "longest_periods": int(table["periods"].max()) if len(table) else 0,
            }
        )

    @asset(
        group_name="detect",
        kinds={"python"},
        deps=[incidents],
        pool=WAREHOUSE_POOL,
        metadata={"dagster/table_name": "main.detection_quality"},
    )
    def detection_quality(warehouse: WarehouseResource) -> MaterializeResult:
        """Whether the noise model holds on this bill: per series profile (steady, weekly, bursty,
        intermittent, sparse: see `cost_forecasts.profile`), the series-months scored, the pages
        the calibrated bounds allow (`false_pages_per_year`, each way) against the pages sent,
        and how many of those people answered "not an issue"."""
        with warehouse.connect() as con:
            table = measure_quality(con, grain, forecast_defaults.false_pages_per_year)
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(table),
                "by_profile": MetadataValue.md(table.drop(columns="granularity").to_markdown(index=False)
                                               if len(table) else "No calibrated series yet."),
            }
        )

    return [cost_forecasts, anomalies, incidents, detection_quality]
