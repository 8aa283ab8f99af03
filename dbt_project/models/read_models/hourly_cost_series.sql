-- Every hourly detection series, for FINOPS_GRANULARITY=hourly (see the cost_series macro).
{{ cost_series('hourly_costs', 'hour', 'hourly_ai_usage') }}
