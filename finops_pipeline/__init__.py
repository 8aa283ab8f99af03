"""finops-pipeline: cloud-cost anomaly detection on Dagster."""
