-- The total series is daily_costs' usage, day by day: a singular test passes when this returns nothing.
with mart as (
    select day as period, round(sum(effective_cost), 6)::double as cost
    from {{ ref('daily_costs') }} where charge_category = 'Usage' group by 1
),
series as (select period, cost from {{ ref('daily_cost_series') }} where series_key = 'total')
select * from mart full outer join series using (period)
where mart.cost is distinct from series.cost
