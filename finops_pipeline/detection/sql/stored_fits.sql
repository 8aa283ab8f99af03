SELECT fit_key, expected_cost, lower_bound, upper_bound FROM forecast_fits
WHERE granularity = $1 AND anchor >= $2::TIMESTAMPTZ AND anchor < $3::TIMESTAMPTZ
