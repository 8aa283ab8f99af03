-- Export files whose rows count for some billing period, and that still have rows loaded.
SELECT DISTINCT d.file FROM billing_deliveries d
WHERE d.status = 'counted' AND EXISTS (SELECT 1 FROM raw_billing r WHERE r.x_SourceFile = d.file)
ORDER BY 1
