from datetime import datetime, timezone

import pandas as pd

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from finops_pipeline.defs.partitions import billing_partitions
from finops_pipeline.defs.pipeline.jobs import UnresolvedAssetJobDefinition
from finops_pipeline.settings import Settings


def build_pipeline_schedule(settings: Settings, job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    grain, partitions = settings.grain, billing_partitions(settings)

    @schedule(name=f"{job.name}_schedule", job=job, cron_schedule=grain.refresh_cron, execution_timezone="UTC",
              default_status=DefaultScheduleStatus.RUNNING, description=grain.refresh_note)
    def pipeline_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        # The partition holding the period that ended before this tick: yesterday at 06:00 daily;
        # by the hour, today's partition (yesterday's at 00:30) with one more hour in it.
        fired = context.scheduled_execution_time or datetime.now(timezone.utc)
        last_period = pd.Timestamp(grain.period(fired) - grain.step, tz="UTC")
        key = partitions.get_partition_key_for_timestamp(last_period.timestamp())
        return RunRequest(run_key=f"{key}@{fired:%Y-%m-%dT%H:%M}", partition_key=key)

    return pipeline_schedule
