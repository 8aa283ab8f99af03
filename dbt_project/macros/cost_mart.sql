{#- A cost mart at a time grain: `periods` are the period columns of stg_focus__billing (the
    first one names the grain: day, or hour), `window` the partition predicate. One row per period
    × provider × billing account × sub-account × service × region × team × charge category, so
    Usage never mixes with Purchase, Tax, Credit or Adjustment and every cost column sums back to
    the line items. -#}
{% macro cost_mart(periods, window) -%}
select
    md5(concat_ws('|',
        {{ periods[0] }}, provider, billing_account_id, sub_account_id, service_name,
        coalesce(region_id, '-'), team, charge_category, billing_currency
    )) as cost_key,
    {{ periods | join(', ') }},
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
where {{ window }}
group by {{ periods | join(', ') }}, provider, billing_account_id, sub_account_id, service_name, region_id, team,
    charge_category, billing_currency
{%- endmacro %}


{#- Rows where a cost mart's billed, effective or list cost differs from its line items, per
    period and charge category: a singular test passes when this returns nothing. -#}
{% macro reconcile_with_line_items(mart, period, window) -%}
with items as (
    select {{ period }}, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref('stg_focus__billing') }}
    where {{ window }}
    group by all
),
mart as (
    select {{ period }}, charge_category,
           sum(billed_cost) as billed, sum(effective_cost) as effective, sum(list_cost) as list
    from {{ ref(mart) }}
    where {{ window }}
    group by all
)
select *
from items
full outer join mart using ({{ period }}, charge_category)
where items.billed is distinct from mart.billed
   or items.effective is distinct from mart.effective
   or items.list is distinct from mart.list
{%- endmacro %}
