{{ config(unique_key='day') }}
-- Usage cost by team per day, with each team's share and the day's untagged share.
with usage as (
    select day, team, sum(effective_cost) as effective_cost, sum(billed_cost) as billed_cost
    from {{ ref('daily_costs') }}
    where charge_category = 'Usage' and {{ partition_window('day') }}
    group by day, team
)

select
    md5(concat_ws('|', day, team)) as team_cost_key,
    day,
    team,
    team = 'untagged' as is_untagged,
    effective_cost,
    billed_cost,
    effective_cost / nullif(sum(effective_cost) over (partition by day), 0) as share_of_day,
    sum(case when team = 'untagged' then effective_cost else 0 end) over (partition by day)
        / nullif(sum(effective_cost) over (partition by day), 0) as untagged_share
from usage
