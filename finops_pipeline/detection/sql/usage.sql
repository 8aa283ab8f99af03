-- Every detection series before $1, from the grain's dbt view of them (see dbt's cost_series).
SELECT series_key, series_level, provider, sub_account_id, sub_account_name, service_name, team, api_key_id, period, cost
FROM {series_model}
WHERE period < $1
ORDER BY series_key, period  -- a fixed order keeps the fits identical across reruns
