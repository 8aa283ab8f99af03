{{ config(meta={'dagster': {'ref': {'name': 'hourly_costs'}}}) }}
-- Every cost column of hourly_costs sums to the line items, per hour and charge category.
with items as (
    select hour, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref('stg_focus__billing') }}
    where {{ hour_window('hour') }}
    group by all
),
hourly as (
    select hour, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref('hourly_costs') }}
    where {{ hour_window('hour') }}
    group by all
)
select *
from items
full outer join hourly using (hour, charge_category)
where items.billed is distinct from hourly.billed
   or items.effective is distinct from hourly.effective
   or items.list is distinct from hourly.list
