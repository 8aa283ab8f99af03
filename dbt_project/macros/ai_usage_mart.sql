{#- AI API usage at a time grain (see cost_mart): Generative AI usage line items per period ×
    provider × sub-account (project, workspace) × team × model × token type × API key × cost source,
    with tokens (or requests, for a web search), the bucket's requests, and the costs. What the AI
    detectors and the API-key series read; its cost columns reconcile with those line items. -#}
{% macro ai_usage_mart(periods, window) -%}
select
    md5(concat_ws('|',
        {{ periods[0] }}, provider, sub_account_id, team, coalesce(ai_model, service_name),
        coalesce(token_type, '-'), coalesce(api_key_id, '-'), cost_source
    )) as ai_usage_key,
    {{ periods | join(', ') }},
    provider,
    sub_account_id,
    any_value(sub_account_name) as sub_account_name,
    team,
    coalesce(ai_model, service_name) as model,
    token_type,
    any_value(consumed_unit) as unit,
    api_key_id,
    cost_source,
    sum(consumed_quantity) as quantity,
    sum(requests) as requests,
    sum(billed_cost) as billed_cost,
    sum(effective_cost) as effective_cost,
    sum(list_cost) as list_cost,
    count(*) as line_items
from {{ ref('stg_focus__billing') }}
where service_subcategory = 'Generative AI' and charge_category = 'Usage' and {{ window }}
group by all
{%- endmacro %}
