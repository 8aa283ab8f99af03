SELECT count(DISTINCT x_SourceFile) FROM raw_billing
WHERE ChargePeriodStart >= $1::TIMESTAMPTZ AND ChargePeriodStart < $2::TIMESTAMPTZ
