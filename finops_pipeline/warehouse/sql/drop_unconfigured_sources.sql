-- Rows of a source that is no longer configured leave the window too.
DELETE FROM raw_billing WHERE x_Source NOT IN (SELECT unnest($1::VARCHAR[]))
  AND ChargePeriodStart >= $2::TIMESTAMPTZ AND ChargePeriodStart < $3::TIMESTAMPTZ
