-- How many scored periods each series spent in each calibrated profile.
SELECT series_key, profile, count(*) AS periods FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND profile IS NOT NULL
GROUP BY ALL
