-- Real bills overflow DECIMAL(18, 6): byte quantities pass 10^12, and providers bill fractions of
-- a cent. Costs get eight decimals (still 64-bit, up to $10 billion a line item), quantities 38 digits.
ALTER TABLE raw_billing ALTER COLUMN "BilledCost" SET DATA TYPE DECIMAL(18, 8);
ALTER TABLE raw_billing ALTER COLUMN "EffectiveCost" SET DATA TYPE DECIMAL(18, 8);
ALTER TABLE raw_billing ALTER COLUMN "ListCost" SET DATA TYPE DECIMAL(18, 8);
ALTER TABLE raw_billing ALTER COLUMN "ContractedCost" SET DATA TYPE DECIMAL(18, 8);
ALTER TABLE raw_billing ALTER COLUMN "PricingQuantity" SET DATA TYPE DECIMAL(38, 12);
ALTER TABLE raw_billing ALTER COLUMN "ConsumedQuantity" SET DATA TYPE DECIMAL(38, 12);

-- What happened to a quarantined row: its billing period was rejected ('rejected'), or the row
-- was loaded with the field set to NULL ('loaded_as_null').
ALTER TABLE raw_billing_quarantine ADD COLUMN outcome VARCHAR DEFAULT 'rejected';
ALTER TABLE raw_billing_quarantine ADD COLUMN billing_period DATE;

-- Every delivered export file, per billing period it holds: where a day's cost comes from, and
-- which files were not counted (a duplicate of another, or an earlier version of the period).
CREATE TABLE IF NOT EXISTS billing_deliveries (
    source VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    billing_period DATE NOT NULL,       -- first day of the month the rows are billed in
    size_bytes BIGINT,
    modified_at TIMESTAMPTZ,            -- the file's mtime when it was fingerprinted
    line_items BIGINT,                  -- the file's rows in this billing period
    fingerprint VARCHAR,                -- of those rows' values: independent of name, format, order
    sketch UBIGINT[],                   -- the smallest row hashes: how much two files share
    manifest VARCHAR,                   -- the manifest listing the file, if any
    execution_id VARCHAR,               -- the manifest's delivery (AWS executionId, Azure runId)
    status VARCHAR NOT NULL,            -- counted | duplicate | superseded | unlisted
    status_reason VARCHAR,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ,
    PRIMARY KEY (source, file, billing_period)
);
