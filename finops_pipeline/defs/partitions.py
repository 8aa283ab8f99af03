"""The partitions every partitioned stage shares, and the selection the schedule runs."""

from dagster import AssetSelection, DailyPartitionsDefinition

from finops_pipeline.settings import Settings

# Every asset and check that opens the DuckDB file takes a slot of this pool (one slot, set in
# dagster.yaml): DuckDB has one writer at a time.
WAREHOUSE_POOL = "duckdb"


def billing_partitions(settings: Settings) -> DailyPartitionsDefinition:
    """UTC days from the start date. The grain decides the periods inside a day (a day, or its 24
    hours), not the partitions: a year of hourly data is 365 partitions."""
    return DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone="UTC",
                                     end_offset=settings.grain.partition_end_offset)


# Every partitioned stage, raw billing through anomalies: what the schedule and a restatement run.
# The unpartitioned incidents roll-up is refreshed by the alert job the new anomalies trigger.
PARTITIONED_STAGES = AssetSelection.groups("ingest", "transform", "detect") - AssetSelection.keys("incidents", "detection_quality")
