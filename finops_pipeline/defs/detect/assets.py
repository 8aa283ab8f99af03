"""Detect: Prophet forecasts, anomaly scoring and the incident roll-up."""

import base64
import json
from datetime import datetime, timezone

import pandas as pd
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
from finops_pipeline.detection.fit_store import load_fits, store_fits
from finops_pipeline.detection.forecasting import ForecastConfig, forecast, refit_anchor
from finops_pipeline.detection.incidents import name_incidents, summarize
from finops_pipeline.detection.queries import chart_panels, new_skus, root_causes, usage_series, window_forecasts
from finops_pipeline.detection.scoring import Thresholds
from finops_pipeline.detection.series import billed_periods, detect, history_by_series, series_metadata
from finops_pipeline.feedback import accepted_levels, mark_anomalies
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse import replace_window, table_columns, utc_bounds

STG_BILLING = AssetKey("stg_focus__billing")
RAW_BILLING = AssetKey("raw_billing")


def build_detect_assets(settings: Settings) -> list[AssetsDefinition]:
    grain = settings.grain
    partitions = billing_partitions(settings)
    costs = AssetKey(grain.cost_table)  # the dbt mart at the pipeline's grain
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
        deps=[costs],
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
        periods = grain.periods(start, end)
        forecast_config = from_run_config(forecast_defaults, config)
        anchors = utc_bounds(refit_anchor(start, forecast_config.refit_every_days), end)
        with warehouse.connect() as con:
            series = usage_series(con, grain, end)
            accepted = {key: grain.period(p) for key, p in accepted_levels(con).items()}
            fits = load_fits(con, grain, anchors)
        predicted = forecast(history_by_series(series), periods, forecast_config, accepted, fits)
        meta = series_metadata(series) if len(series) else pd.DataFrame()
        if len(predicted):
            predicted = predicted.join(meta[["series_level", "provider", "sub_account_id", "service_name"]], on="series_key")
        predicted["granularity"] = grain.name
        with warehouse.connect() as con:
            replace_window(con, "cost_forecasts", predicted.reindex(columns=table_columns(con, "cost_forecasts")),
                           "forecast_period >= ?::TIMESTAMPTZ AND forecast_period < ?::TIMESTAMPTZ",
                           utc_bounds(start, end), before_commit=lambda: store_fits(con, grain, fits, anchors))
        today = predicted[predicted["horizon"] == 0]
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(predicted),
                "series_forecast": int(today["series_key"].nunique()),
                "periods": len(periods),
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
        # stg_focus__billing is a view: reading it for contributors reads raw_billing itself.
        deps=[cost_forecasts, costs, STG_BILLING, RAW_BILLING],
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
        periods = grain.periods(start, end)
        thresholds = from_run_config(threshold_defaults, config)
        bounds = utc_bounds(start, end)
        with warehouse.connect() as con:
            series = usage_series(con, grain, end)
            found = detect(series, window_forecasts(con, grain, start, end), periods, thresholds, grain,
                           forecast_defaults.min_history_days,
                           new_skus(con, grain, start, end, forecast_defaults.min_history_days))
            billed = billed_periods(series)
            unbilled = [grain.label(p) for p in periods if p not in billed]
            if unbilled:
                context.log.warning(f"No usage line items for {', '.join(unbilled)}: not scored (export late or missing?)")
            causes = root_causes(con, grain, found)
            found["root_cause"] = [json.dumps(c) for c in causes]
            found["top_contributors"] = [json.dumps(next(iter(c.values()))) for c in causes]  # the headline dimension
            # An anomaly keeps the time it was first detected when its partition is re-run.
            previous = con.execute(
                "SELECT anomaly_id, detected_at FROM anomalies WHERE period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ",
                bounds,
            ).df()
            known = dict(zip(previous["anomaly_id"], previous["detected_at"]))
            now = pd.Timestamp(datetime.now(timezone.utc))
            found["detected_at"] = [known.get(i, now) for i in found["anomaly_id"]]
            new_ids = [i for i in found["anomaly_id"] if i not in known]
            panels = chart_panels(con, grain, series, found, start, end)

            def name_and_mark() -> None:  # an answer on an incident covers the periods it grows by
                name_incidents(con)
                mark_anomalies(con)

            replace_window(con, "anomalies", found.reindex(columns=table_columns(con, "anomalies")),
                           "period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ", bounds,
                           before_commit=name_and_mark)
        png = cost_band_chart(panels, unit=grain.unit)
        chart_path = outbox.path("charts") / f"anomalies_{grain.file_label(start)}_{grain.file_label(end)}.png"
        chart_path.write_bytes(png)
        preview = found[["period_start", "series_key", "actual_cost", "expected_cost", "impact_usd", "deviation_pct", "severity"]]
        preview = preview.reindex(preview["impact_usd"].abs().sort_values(ascending=False).index).head(10)
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(found),
                "new_anomalies": len(new_ids),
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
    def incidents(warehouse: WarehouseResource) -> MaterializeResult:
        """The anomalous periods of a series that follow each other, rolled up as one incident:
        start, peak, latest, number of periods, total $ excess, highest severity, and status (open,
        or resolved once a later period was scored back in its band). A level shift is one
        incident. Alerts are sent per incident."""
        with warehouse.connect() as con:
            found = con.execute("SELECT * FROM anomalies WHERE granularity = ?", [grain.name]).df()
            last_scored = con.execute(
                "SELECT series_key, max(target_period) FROM cost_forecasts WHERE horizon = 0 AND granularity = ? GROUP BY 1",
                [grain.name],
            ).fetchall()
            table = summarize(found, pd.Series(dict(last_scored), dtype="object"))
            replace_window(con, "incidents", table, "granularity = ?", [grain.name])
        return MaterializeResult(
            metadata={
                "dagster/row_count": len(table),
                "open": int((table["status"] == "open").sum()),
                "by_severity": MetadataValue.json(table["severity"].value_counts().to_dict()),
                "longest_periods": int(table["periods"].max()) if len(table) else 0,
            }
        )

    return [cost_forecasts, anomalies, incidents]
