from dagster import AssetKey, AssetSelection, define_asset_job

alert_job = define_asset_job(
    "anomaly_alert_job",
    selection=AssetSelection.keys("incidents", "detection_quality", "anomaly_report", "anomaly_alerts"),
    description="Roll anomalies up into incidents, then report and alert on those not alerted yet, revise the alerts "
    "whose incident changed, and deliver what the outbox holds.",
)

digest_job = define_asset_job("cost_digest_job", selection=AssetSelection.keys("cost_digest"),
                              description="Post the daily cost digest (yesterday, by default).")

ANOMALY_ALERTS = AssetKey("anomaly_alerts")
