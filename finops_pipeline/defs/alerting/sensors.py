"""Alerting: the sensor that launches the alert job when `anomalies` is materialized."""

from pathlib import Path

import duckdb
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorDefinition,
    SensorResult,
    sensor,
)

from finops_pipeline.alerting.delivery import due
from finops_pipeline.defs.alerting.jobs import ANOMALY_ALERTS, alert_job
from finops_pipeline.settings import Settings

ANOMALIES = AssetKey("anomalies")
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


def build_anomalies_sensor(settings: Settings) -> SensorDefinition:
    # The database path, not the warehouse resource: a tick only peeks at the outbox, read-only,
    # and must not open the file for writing (or migrate it) while a run holds it.
    database = str(settings.duckdb_path)

    @sensor(
        name="anomalies_sensor",
        job=alert_job,
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Launches the alert job once for every run that materialized `anomalies`: new rows "
        "raise alerts, and a run without any can still resolve, grow or withdraw an incident. Between "
        "those, it re-runs delivery while the outbox holds messages that are due (Slack was down or "
        "rate-limited, or a run died mid-send) and no other run is going.",
    )
    def anomalies_sensor(context: SensorEvaluationContext) -> SensorResult:
        # A plain sensor walking every materialization after the cursor: asset_sensor would only
        # see the newest one, and two quick runs would lose an alert.
        cursor = int(context.cursor) if context.cursor else None
        by_run: dict[str, list] = {}
        while True:
            result = context.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=ANOMALIES, after_storage_id=cursor), limit=500, ascending=True
            )
            for record in result.records:
                cursor = record.storage_id
                # One backfill run emits an event per partition: one request per run is enough.
                key = record.run_id or f"runless-{record.storage_id}"
                by_run.setdefault(key, []).append(record)
            if not result.has_more:
                break
        requests = [
            RunRequest(run_key=f"anomalies-{max(r.storage_id for r in records)}", tags={"finops/source_run": key})
            for key, records in by_run.items()
        ]
        if not requests and _outbox_due(context, database):
            requests.append(RunRequest(asset_selection=[ANOMALY_ALERTS], tags={"finops/trigger": "outbox-retry"}))
        return SensorResult(run_requests=requests, cursor=str(cursor) if cursor is not None else None)

    return anomalies_sensor


def _outbox_due(context: SensorEvaluationContext, database: str) -> bool:
    """Messages due for delivery, and no run queued or running: an alert run would send them, and
    a pipeline run holds the DuckDB file (its anomalies then launch an alert run anyway)."""
    if context.instance.get_runs(RunsFilter(statuses=ACTIVE), limit=1):
        return False
    if not Path(database).exists():
        return False
    try:
        with duckdb.connect(database, read_only=True) as con:
            if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'alert_outbox'").fetchone()[0]:
                return False
            return due(con) > 0
    except duckdb.Error as exc:  # a pipeline run holds the file: look again next tick
        context.log.info(f"Outbox not checked this tick: {type(exc).__name__}")
        return False
