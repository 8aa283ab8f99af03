"""Dagster wiring, one module per stage: ingest → transform (dbt) → detect → alerting."""
