-- Line items loaded with a field set to NULL because its value did not parse, by file and column
-- (the latest quarantine entry of each row counts).
SELECT file, column_name, reason, count(DISTINCT row_number) AS line_items
FROM raw_billing_quarantine
WHERE outcome = 'loaded_as_null'
GROUP BY ALL ORDER BY ALL
