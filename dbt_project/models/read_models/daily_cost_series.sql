-- Every daily detection series (see the cost_series macro): what forecasts and anomalies read.
{{ cost_series('daily_costs', 'day', 'daily_ai_usage') }}
