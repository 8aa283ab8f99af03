"""The Definitions: every stage's assets, checks, jobs, schedules and sensors, built from one
``Settings``, with the project-wide attributes applied once."""

import sys

from dagster import AssetSpec, Definitions

from finops_pipeline.defs.alerting.assets import build_alerting_assets
from finops_pipeline.defs.alerting.jobs import alert_job, digest_job
from finops_pipeline.defs.alerting.schedules import digest_schedule
from finops_pipeline.defs.alerting.sensors import build_anomalies_sensor
from finops_pipeline.defs.detect.assets import build_detect_assets
from finops_pipeline.defs.detect.checks import DETECT_CHECKS
from finops_pipeline.defs.feedback.jobs import incident_feedback_job
from finops_pipeline.defs.ingest.assets import build_raw_billing
from finops_pipeline.defs.ingest.checks import INGEST_CHECKS
from finops_pipeline.defs.ingest.sensors import build_restatements_sensor
from finops_pipeline.defs.pipeline.jobs import build_pipeline_job
from finops_pipeline.defs.pipeline.recovery import dead_runs_sensor, recovering_executor
from finops_pipeline.defs.pipeline.schedules import build_pipeline_schedule
from finops_pipeline.defs.resources import build_resources
from finops_pipeline.defs.transform.assets import build_dbt_models, dbt_resource
from finops_pipeline.errors import SettingsError
from finops_pipeline.settings import Settings, load_settings

OWNERS = ["team:finops"]


def _project_wide(spec: AssetSpec) -> AssetSpec:
    """Every asset is the FinOps team's and lives in the DuckDB warehouse."""
    return spec.replace_attributes(owners=OWNERS).merge_attributes(kinds={"duckdb"})


def build_definitions(settings: Settings) -> Definitions:
    pipeline_job = build_pipeline_job(settings)
    return Definitions(
        assets=[build_raw_billing(settings), build_dbt_models(settings), *build_detect_assets(settings),
                *build_alerting_assets(settings)],
        asset_checks=[*INGEST_CHECKS, *DETECT_CHECKS],
        jobs=[pipeline_job, alert_job, digest_job, incident_feedback_job],
        schedules=[build_pipeline_schedule(settings, pipeline_job), digest_schedule],
        sensors=[build_anomalies_sensor(settings), build_restatements_sensor(settings), dead_runs_sensor],
        resources=build_resources(settings, dbt_resource()),
        # Steps in one process: every step takes the one DuckDB slot anyway, so separate step
        # processes bought only their start-up (15-40 s each on 2 cores, most of an alert's latency).
        # Prophet fits still run in their own worker processes. Each run first recovers runs
        # whose process was killed (see defs/pipeline/recovery.py).
        executor=recovering_executor,
    ).map_asset_specs(func=_project_wide)


def _definitions_or_exit() -> Definitions:
    """A configuration error ends the command with one line naming the variable and what it
    accepts, not a traceback through Dagster's loader."""
    try:
        return build_definitions(load_settings())
    except SettingsError as exc:
        sys.exit(f"finops-pipeline: configuration error: {exc}")


defs = _definitions_or_exit()
