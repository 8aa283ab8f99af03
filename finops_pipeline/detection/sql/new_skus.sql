-- Usage cost per sub-account × service, SKU and period of the window [$2, $1), for the SKUs in
-- their first {weeks} days on their series, on a bill older than that (the new-SKU rule).
WITH first_seen AS (SELECT provider, sub_account_id, service_name, sku_id, first_{period} AS first_period
                    FROM sku_first_seen),
     bill_start AS (SELECT min(first_period) AS first_period FROM first_seen)
SELECT u.{period} AS period, provider, sub_account_id, service_name, sku_id, sum(effective_cost)::DOUBLE AS cost
FROM stg_focus__billing u JOIN first_seen f USING (provider, sub_account_id, service_name, sku_id)
WHERE u.charge_category = 'Usage'
  AND u.{period} >= $2::{period_type} AND u.{period} < $1::{period_type}
  AND u.{period} < f.first_period + INTERVAL {weeks} DAY
  AND f.first_period >= (SELECT first_period FROM bill_start) + INTERVAL {weeks} DAY
GROUP BY ALL
