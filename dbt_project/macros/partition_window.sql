{#- The partition window Dagster passes as vars, as a predicate on `column` (a date).
    Without vars it is `true`, so a plain `dbt build` rebuilds every day. -#}
{% macro partition_window(column) -%}
  {%- if var('min_date') and var('max_date') -%}
    {{ column }} >= cast('{{ var("min_date") }}' as date) and {{ column }} < cast('{{ var("max_date") }}' as date)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}

{#- The same for an hourly window, [min_hour, max_hour) as UTC timestamps, on `column` (a UTC
    timestamp truncated to the hour). -#}
{% macro hour_window(column) -%}
  {%- if var('min_hour') and var('max_hour') -%}
    {{ column }} >= cast('{{ var("min_hour") }}' as timestamptz) at time zone 'UTC'
    and {{ column }} < cast('{{ var("max_hour") }}' as timestamptz) at time zone 'UTC'
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
