-- Usage cost per period × provider × sub-account × service × team before $1, from the grain's
-- cost mart: what every detection series is summed from.
SELECT {period} AS period, provider, sub_account_id, any_value(sub_account_name) AS sub_account_name,
       service_name, team, sum(effective_cost) AS effective_cost
FROM {cost_table}
WHERE charge_category = 'Usage' AND {period} < $1
GROUP BY ALL
ORDER BY ALL  -- a fixed order keeps float sums, and so the fits, identical across reruns
