-- Usage line items that cost less than nothing and do not say they correct an earlier charge
-- (FOCUS: ChargeClass 'Correction'): a sign flipped in an export, or a credit filed as usage.
SELECT x_SourceFile AS file, count(*) AS line_items, sum(EffectiveCost)::DOUBLE AS effective_cost
FROM raw_billing
WHERE ChargeCategory = 'Usage' AND EffectiveCost < 0 AND ChargeClass IS DISTINCT FROM 'Correction'
GROUP BY 1 ORDER BY 1
