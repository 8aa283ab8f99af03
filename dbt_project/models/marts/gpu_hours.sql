{{ config(unique_key='day') }}
-- Each GPU's hours from Prometheus (sources/prometheus.py): what it cost, how busy it was, how
-- long it sat idle and how long it reported nothing. What the idle-GPU rule reads, at either
-- grain (a day is its hours). Costs reconcile with those line items.
select
    md5(concat_ws('|', hour, provider, sub_account_id, service_name, resource_id)) as gpu_hour_key,
    hour,
    day,
    provider,
    sub_account_id,
    service_name,
    resource_id,
    any_value(team) as team,
    sum(effective_cost) as effective_cost,
    sum(consumed_quantity) as gpu_hours,
    avg(gpu_busy_pct) as busy_pct,
    sum(idle_minutes) as idle_minutes,
    max(idle_streak_minutes) as idle_streak_minutes,
    sum(absent_minutes) as absent_minutes
from {{ ref('stg_focus__billing') }}
where resource_type = 'GPU' and charge_category = 'Usage' and idle_minutes is not null and {{ partition_window('day') }}
group by all
