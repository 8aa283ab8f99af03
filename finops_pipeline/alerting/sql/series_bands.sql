SELECT target_period AS period, expected_cost, lower_bound, upper_bound FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND series_key = $2 AND target_period >= $3::TIMESTAMPTZ
  AND target_period < $4::TIMESTAMPTZ
