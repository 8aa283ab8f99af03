-- A report lists the incidents it covers: name the column so.
ALTER TABLE anomaly_reports RENAME COLUMN anomaly_ids TO incident_ids;
