-- A source's fingerprinted files as the ledger has them: reused while size and mtime are unchanged.
SELECT file, billing_period, size_bytes, modified_at, line_items, fingerprint, sketch
FROM billing_deliveries WHERE source = $1
