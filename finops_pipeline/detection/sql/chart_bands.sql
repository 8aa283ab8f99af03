SELECT target_period AS period, series_key, expected_cost, lower_bound, upper_bound FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND target_period >= $2::TIMESTAMPTZ AND target_period < $3::TIMESTAMPTZ
  AND series_key IN (SELECT unnest($4::VARCHAR[]))
