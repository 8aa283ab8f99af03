-- Usage line items that cost less than nothing and do not say they correct an earlier charge
-- (FOCUS: ChargeClass 'Correction'): a refund booked as usage, or a sign flipped in an export.
-- FOCUS allows them; they are recorded, not refused. $1, $2: a window, or NULL for all.
SELECT x_SourceFile AS file, count(*) AS line_items, sum(EffectiveCost)::DOUBLE AS effective_cost
FROM raw_billing
WHERE ChargeCategory = 'Usage' AND EffectiveCost < 0 AND ChargeClass IS DISTINCT FROM 'Correction'
  AND ($1::TIMESTAMPTZ IS NULL OR ChargePeriodStart >= $1::TIMESTAMPTZ)
  AND ($2::TIMESTAMPTZ IS NULL OR ChargePeriodStart < $2::TIMESTAMPTZ)
GROUP BY 1 ORDER BY 1
