"""Dagster wiring, one folder per stage (ingest → transform (dbt) → detect → alerting, plus
feedback and the pipeline's job and schedule), each with a file per kind. Stages whose shape
depends on the settings are built by factories that ``definitions.build_definitions`` calls."""
