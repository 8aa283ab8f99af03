"""The one Definitions object: every asset, check, job, schedule, sensor and resource."""

from dagster import Definitions, in_process_executor

from finops_pipeline.defs import alerting, detect, feedback, ingest, transform
from finops_pipeline.resources import build_resources
from finops_pipeline.settings import Settings, export_duckdb_path, load_settings


def build_definitions(settings: Settings) -> Definitions:
    export_duckdb_path(settings)
    return Definitions(
        assets=[
            ingest.raw_billing,
            transform.finops_dbt_models,
            detect.cost_forecasts,
            detect.anomalies,
            detect.incidents,
            alerting.anomaly_report,
            alerting.anomaly_alerts,
            alerting.cost_digest,
        ],
        asset_checks=[detect.forecast_bands_are_ordered, detect.anomalies_have_forecasts],
        jobs=[detect.cost_pipeline, alerting.alert_job, alerting.digest_job, feedback.incident_feedback_job],
        schedules=[detect.cost_pipeline_schedule, alerting.digest_schedule],
        sensors=[alerting.anomalies_sensor, ingest.focus_restatements_sensor],
        resources=build_resources(settings, transform.DBT_PROJECT_DIR, transform.DBT_EXECUTABLE),
        # Steps in one process: every step takes the one DuckDB slot anyway, so separate step
        # processes bought only their start-up (15-40 s each on 2 cores, most of an alert's latency).
        # Prophet fits still run in their own worker processes.
        executor=in_process_executor,
    )


defs = build_definitions(load_settings())
