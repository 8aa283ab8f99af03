SELECT period_start AS period, series_key, actual_cost AS cost FROM anomalies
WHERE granularity = $1 AND period_start >= $2::TIMESTAMPTZ AND period_start < $3::TIMESTAMPTZ
