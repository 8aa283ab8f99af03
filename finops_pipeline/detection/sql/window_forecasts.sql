-- The bands the window's periods are scored against: each period's own forecast (horizon 0).
SELECT target_period, series_key, model, expected_cost, lower_bound, upper_bound FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND forecast_period >= $2::TIMESTAMPTZ AND forecast_period < $3::TIMESTAMPTZ
