"""Daily UTC partitions shared by every stage, from FINOPS_START_DATE up to yesterday."""

from dagster import DailyPartitionsDefinition

from finops_pipeline.settings import load_settings

daily_partitions = DailyPartitionsDefinition(start_date=load_settings().start_date, timezone="UTC")
