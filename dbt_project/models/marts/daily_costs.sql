{{ config(unique_key='day') }}
-- Daily cost by provider, account, service, region, team and charge category (UTC days).
-- Charge categories stay apart, so Usage is never mixed with Purchase, Tax, Credit or Adjustment,
-- and every cost column sums back to the line items.
{{ cost_mart(['day'], partition_window('day')) }}
