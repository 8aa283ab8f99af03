{{ config(unique_key='hour') }}
-- Hourly cost by provider, account, service, region, team and charge category (UTC hours), for
-- same-day detection from hourly exports (FINOPS_GRANULARITY=hourly). Built like daily_costs.
{{ cost_mart(['hour', 'day'], hour_window('hour')) }}
