{{ config(unique_key='hour') }}
-- AI API usage per hour, for FINOPS_GRANULARITY=hourly (see the ai_usage_mart macro).
{{ ai_usage_mart(['hour', 'day'], hour_window('hour')) }}
