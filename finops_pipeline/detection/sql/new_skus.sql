-- Usage cost per sub-account × service, SKU and period of the window [$2, $1), for the SKUs in
-- their first {weeks} days on their series, on a bill older than that (the new-SKU rule).
WITH usage AS (SELECT * FROM stg_focus__billing WHERE charge_category = 'Usage' AND sku_id IS NOT NULL
                 AND {period} < $1::{period_type}),
     first_seen AS (SELECT provider, sub_account_id, service_name, sku_id, min({period}) AS first_period
                    FROM usage GROUP BY ALL)
SELECT u.{period} AS period, provider, sub_account_id, service_name, sku_id, sum(effective_cost)::DOUBLE AS cost
FROM usage u JOIN first_seen f USING (provider, sub_account_id, service_name, sku_id)
WHERE u.{period} >= $2::{period_type}
  AND u.{period} < f.first_period + INTERVAL {weeks} DAY
  AND f.first_period >= (SELECT min({period}) FROM usage) + INTERVAL {weeks} DAY
GROUP BY ALL
