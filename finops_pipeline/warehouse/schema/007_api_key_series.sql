-- AI API keys are detection series of their own (level api_key): anomalies and incidents name
-- the key their series is, NULL at every other level.
ALTER TABLE anomalies ADD COLUMN api_key_id VARCHAR;
ALTER TABLE incidents ADD COLUMN api_key_id VARCHAR;
