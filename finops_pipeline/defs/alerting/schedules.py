from dagster import DefaultScheduleStatus, ScheduleDefinition

from finops_pipeline.defs.alerting.jobs import digest_job

digest_schedule = ScheduleDefinition(
    name="daily_digest_schedule",
    job=digest_job,
    cron_schedule="0 8 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The daily digest at 08:00 UTC, after the 06:00 pipeline run has scored yesterday.",
)
