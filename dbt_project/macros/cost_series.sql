{#- Every detection series of a cost mart, one row per series and period: Usage EffectiveCost of
    the total, each provider, sub-account, service, team and sub-account × service, in one pass
    (GROUPING SETS), and of each AI API key, from the AI usage mart `ai_mart`. `period` names the
    marts' period column (day, or hour).

    A sub-account × service series belongs to the team that carries most of its spend (ties: the
    first name), so its anomalies route like the team's; a sub-account's name is the largest it
    was billed under. Keys are `total`, `provider:AWS`, `sub_account:AWS/1234`,
    `service:AWS/Amazon EC2`, `team:ml`, `sub_account_service:AWS/1234/Amazon EC2`,
    `api_key:OpenAI/proj_abc/key_123`. An API key's series belongs to the team of most of its spend. -#}
{% macro cost_series(mart, period, ai_mart) -%}
with usage as (
    select {{ period }} as period, provider, sub_account_id, sub_account_name, service_name, team, effective_cost
    from {{ ref(mart) }}
    where charge_category = 'Usage'
),

owners as (
    select provider, sub_account_id, service_name, first(team order by cost desc, team) as owner
    from (select provider, sub_account_id, service_name, team, sum(effective_cost) as cost from usage group by all)
    group by all
),

names as (
    select provider, sub_account_id, max(sub_account_name) as sub_account_name from usage group by all
),

levels as (
    select
        period, provider, sub_account_id, service_name, team,
        -- which columns each grouping set keeps (a bit is set for a column it sums over)
        case grouping(provider, sub_account_id, service_name, team)
            when 15 then 'total'
            when 7 then 'provider'
            when 3 then 'sub_account'
            when 5 then 'service'
            when 14 then 'team'
            when 1 then 'sub_account_service'
        end as series_level,
        round(sum(effective_cost), 6)::double as cost
    from usage
    group by grouping sets (
        (period),
        (period, provider),
        (period, provider, sub_account_id),
        (period, provider, service_name),
        (period, team),
        (period, provider, sub_account_id, service_name)
    )
),

api_keys as (
    select {{ period }} as period, provider, sub_account_id, api_key_id, team, effective_cost
    from {{ ref(ai_mart) }}
    where api_key_id is not null
),

key_owners as (
    select provider, sub_account_id, api_key_id, first(team order by cost desc, team) as owner
    from (select provider, sub_account_id, api_key_id, team, sum(effective_cost) as cost from api_keys group by all)
    group by all
)

select
    case series_level
        when 'total' then 'total'
        when 'provider' then 'provider:' || l.provider
        when 'sub_account' then 'sub_account:' || l.provider || '/' || l.sub_account_id
        when 'service' then 'service:' || l.provider || '/' || l.service_name
        when 'team' then 'team:' || l.team
        else 'sub_account_service:' || l.provider || '/' || l.sub_account_id || '/' || l.service_name
    end as series_key,
    series_level,
    l.provider,
    l.sub_account_id,
    n.sub_account_name,
    l.service_name,
    coalesce(l.team, o.owner) as team,
    null::varchar as api_key_id,
    period,
    cost
from levels l
left join names n on l.sub_account_id is not null and n.provider = l.provider and n.sub_account_id = l.sub_account_id
left join owners o on series_level = 'sub_account_service' and o.provider = l.provider
    and o.sub_account_id = l.sub_account_id and o.service_name = l.service_name

union all

select
    'api_key:' || k.provider || '/' || k.sub_account_id || '/' || k.api_key_id as series_key,
    'api_key' as series_level,
    k.provider,
    k.sub_account_id,
    n.sub_account_name,
    null::varchar as service_name,
    o.owner as team,
    k.api_key_id,
    k.period,
    round(sum(k.effective_cost), 6)::double as cost
from api_keys k
left join names n on n.provider = k.provider and n.sub_account_id = k.sub_account_id
join key_owners o on o.provider = k.provider and o.sub_account_id = k.sub_account_id and o.api_key_id = k.api_key_id
group by all
{%- endmacro %}
