-- One file's rows in one billing period, and whether they count; first_seen survives re-runs.
INSERT INTO billing_deliveries AS d
    (source, file, billing_period, size_bytes, modified_at, line_items, fingerprint, sketch, manifest, execution_id,
     status, status_reason, first_seen, last_seen)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
ON CONFLICT (source, file, billing_period) DO UPDATE SET
    size_bytes = excluded.size_bytes, modified_at = excluded.modified_at, line_items = excluded.line_items,
    fingerprint = excluded.fingerprint, sketch = excluded.sketch, manifest = excluded.manifest,
    execution_id = excluded.execution_id, status = excluded.status, status_reason = excluded.status_reason,
    last_seen = excluded.last_seen
