SELECT ChargeCategory, round(sum(BilledCost), 2)::DOUBLE FROM raw_billing
WHERE ChargePeriodStart >= $1::TIMESTAMPTZ AND ChargePeriodStart < $2::TIMESTAMPTZ
GROUP BY 1 ORDER BY 1
