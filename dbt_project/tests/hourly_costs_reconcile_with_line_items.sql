{{ config(meta={'dagster': {'ref': {'name': 'hourly_costs'}}}) }}
-- Every cost column of hourly_costs sums to the line items, per hour and charge category.
{{ reconcile_with_line_items('hourly_costs', 'hour', hour_window('hour')) }}
