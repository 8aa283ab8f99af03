"""The partitions every stage shares: daily UTC days (the default) or, with
FINOPS_GRANULARITY=hourly, UTC hours, from FINOPS_START_DATE on."""

from dagster import AssetSelection, DailyPartitionsDefinition, HourlyPartitionsDefinition

from finops_pipeline.detection.periods import GRAINS
from finops_pipeline.settings import load_settings

_settings = load_settings()
GRAIN = GRAINS[_settings.granularity]

billing_partitions = (
    HourlyPartitionsDefinition(start_date=f"{_settings.start_date}-00:00", timezone="UTC")
    if GRAIN.name == "hourly"
    else DailyPartitionsDefinition(start_date=_settings.start_date, timezone="UTC")
)

# Every partitioned stage, raw billing through anomalies: what the schedule and a restatement run.
# The unpartitioned incidents roll-up is refreshed by the alert job the new anomalies trigger.
PARTITIONED_STAGES = AssetSelection.groups("ingest", "transform", "detect") - AssetSelection.keys("incidents")
