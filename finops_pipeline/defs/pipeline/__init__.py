"""The whole pipeline's job and schedule: raw billing → dbt models → forecasts → anomalies."""
