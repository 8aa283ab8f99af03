-- AI API usage per period, project × model and token type, summed over API keys, for the periods
-- the AI rules compare: [$1 - their look-back, $2).
SELECT {period} AS period, provider, sub_account_id, model, token_type,
       sum(quantity)::DOUBLE AS quantity, sum(requests)::DOUBLE AS requests, sum(effective_cost)::DOUBLE AS cost
FROM {ai_table}
WHERE {period} >= $1 AND {period} < $2 AND token_type IS NOT NULL
GROUP BY ALL
ORDER BY period, provider, sub_account_id, model, token_type
