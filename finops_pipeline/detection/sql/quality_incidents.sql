-- Every incident with the profile its series had when it began.
SELECT i.incident_id, i.severity, i.signal, i.explained_by, i.feedback, coalesce(f.profile, 'uncalibrated') AS profile
FROM incidents i
LEFT JOIN cost_forecasts f
  ON f.series_key = i.series_key AND f.target_period = i.start_period AND f.horizon = 0 AND f.granularity = i.granularity
WHERE i.granularity = $1
