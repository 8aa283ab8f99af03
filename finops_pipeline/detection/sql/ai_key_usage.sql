-- AI API usage per period and API key, for the runaway-key rule: [$1 - its look-back, $2).
SELECT {period} AS period, provider, sub_account_id, api_key_id,
       sum(CASE WHEN unit = 'Tokens' THEN quantity END)::DOUBLE AS tokens,
       sum(requests)::DOUBLE AS requests, sum(effective_cost)::DOUBLE AS cost
FROM {ai_table}
WHERE {period} >= $1 AND {period} < $2 AND api_key_id IS NOT NULL
GROUP BY ALL
ORDER BY period, provider, sub_account_id, api_key_id
