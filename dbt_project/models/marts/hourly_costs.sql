{{ config(unique_key='hour') }}
-- Hourly cost by provider, account, service, region, team and charge category (UTC hours), for
-- same-day detection from hourly exports (FINOPS_GRANULARITY=hourly). Built like daily_costs.
select
    md5(concat_ws('|',
        hour, provider, billing_account_id, sub_account_id, service_name,
        coalesce(region_id, '-'), team, charge_category, billing_currency
    )) as cost_key,
    hour,
    day,
    provider,
    billing_account_id,
    sub_account_id,
    any_value(sub_account_name) as sub_account_name,
    service_name,
    any_value(service_category) as service_category,
    region_id,
    team,
    charge_category,
    billing_currency,
    sum(billed_cost) as billed_cost,
    sum(effective_cost) as effective_cost,
    sum(list_cost) as list_cost,
    count(*) as line_items
from {{ ref('stg_focus__billing') }}
where {{ hour_window('hour') }}
group by hour, day, provider, billing_account_id, sub_account_id, service_name, region_id, team, charge_category, billing_currency
