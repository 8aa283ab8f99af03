-- The horizon-0 expected cost of every series in [$2, $3): the out-of-sample errors a window's
-- alert bounds are calibrated on (see detection.calibration).
SELECT target_period, series_key, expected_cost FROM cost_forecasts
WHERE horizon = 0 AND granularity = $1 AND target_period >= $2::TIMESTAMPTZ AND target_period < $3::TIMESTAMPTZ
