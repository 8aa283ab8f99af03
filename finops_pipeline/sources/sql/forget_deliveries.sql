-- Billing periods a file no longer holds (it was rewritten): they leave the ledger.
DELETE FROM billing_deliveries
WHERE source = $1 AND file = $2 AND billing_period NOT IN (SELECT unnest($3::DATE[]))
