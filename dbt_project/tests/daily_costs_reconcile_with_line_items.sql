{{ config(meta={'dagster': {'ref': {'name': 'daily_costs'}}}) }}
-- Every cost column of daily_costs sums to the line items, per day and charge category.
with items as (
    select day, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref('stg_focus__billing') }}
    where {{ partition_window('day') }}
    group by all
),
daily as (
    select day, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref('daily_costs') }}
    where {{ partition_window('day') }}
    group by all
)
select *
from items
full outer join daily using (day, charge_category)
where items.billed is distinct from daily.billed
   or items.effective is distinct from daily.effective
   or items.list is distinct from daily.list
