-- The bands the window's periods are scored against: each period's own forecast (horizon 0),
-- with its calibrated alert bounds.
SELECT target_period, series_key, model, expected_cost, lower_bound, upper_bound, profile, alert_lower, alert_upper,
       span_expected, span_alert_lower, span_alert_upper, active_cost, span_active_limit, job_upper
FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND forecast_period >= $2::TIMESTAMPTZ AND forecast_period < $3::TIMESTAMPTZ
