-- The alert ledger is keyed by the incident an alert is about: name its key so.
ALTER TABLE alert_ledger RENAME COLUMN anomaly_id TO incident_id;
