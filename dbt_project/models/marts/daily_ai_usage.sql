{{ config(unique_key='day') }}
-- AI API usage per day, model, token type and API key (see the ai_usage_mart macro).
{{ ai_usage_mart(['day'], partition_window('day')) }}
