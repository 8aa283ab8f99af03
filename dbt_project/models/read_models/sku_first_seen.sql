-- When each SKU was first billed as usage on its sub-account × service: the day and the hour.
-- The new-SKU rule reads it to tell a SKU in its first weeks from one the series always had.
select
    provider,
    sub_account_id,
    service_name,
    sku_id,
    min(day) as first_day,
    min(hour) as first_hour
from {{ ref('stg_focus__billing') }}
where charge_category = 'Usage' and sku_id is not null
group by all
