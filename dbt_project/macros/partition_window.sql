{#- The partition window Dagster passes as vars, as a predicate on `column` (a date).
    Without vars it is `true`, so a plain `dbt build` rebuilds every day. -#}
{% macro partition_window(column) -%}
  {%- if var('min_date') and var('max_date') -%}
    {{ column }} >= cast('{{ var("min_date") }}' as date) and {{ column }} < cast('{{ var("max_date") }}' as date)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
