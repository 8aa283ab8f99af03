-- Keep only the fits this run used for its anchors: a fit of data since restated is never needed again.
DELETE FROM forecast_fits WHERE granularity = $1 AND anchor >= $2::TIMESTAMPTZ AND anchor < $3::TIMESTAMPTZ
  AND fit_key NOT IN (SELECT unnest($4::VARCHAR[]))
