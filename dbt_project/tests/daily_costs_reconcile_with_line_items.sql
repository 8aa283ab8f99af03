{{ config(meta={'dagster': {'ref': {'name': 'daily_costs'}}}) }}
-- Every cost column of daily_costs sums to the line items, per day and charge category.
{{ reconcile_with_line_items('daily_costs', 'day', partition_window('day')) }}
