-- FOCUS line items typed and renamed to snake_case, one row per line item.
-- Costs are rounded to micro-dollars per line item here (raw_billing keeps eight decimals).
-- The charge day and hour are taken in UTC so partitions line up across providers.
select
    cast(timezone('UTC', ChargePeriodStart) as date) as day,
    date_trunc('hour', timezone('UTC', ChargePeriodStart)) as hour,
    timezone('UTC', ChargePeriodStart) as charge_period_start,
    timezone('UTC', ChargePeriodEnd) as charge_period_end,
    timezone('UTC', BillingPeriodStart) as billing_period_start,
    ProviderName as provider,
    BillingAccountId as billing_account_id,
    BillingAccountName as billing_account_name,
    SubAccountId as sub_account_id,
    SubAccountName as sub_account_name,
    ServiceName as service_name,
    ServiceCategory as service_category,
    ServiceSubcategory as service_subcategory,
    RegionId as region_id,
    ResourceId as resource_id,
    ResourceName as resource_name,
    ResourceType as resource_type,
    SkuId as sku_id,
    SkuMeter as sku_meter,
    ChargeCategory as charge_category,
    ChargeClass as charge_class,
    ChargeDescription as charge_description,
    ChargeFrequency as charge_frequency,
    PricingCategory as pricing_category,
    CommitmentDiscountId as commitment_discount_id,
    BillingCurrency as billing_currency,
    cast(BilledCost as decimal(18, 6)) as billed_cost,
    cast(EffectiveCost as decimal(18, 6)) as effective_cost,
    cast(ListCost as decimal(18, 6)) as list_cost,
    -- Spend without a team tag is reported as its own team, never dropped.
    coalesce(nullif(trim(json_extract_string(Tags, '$.team')), ''), 'untagged') as team,
    Tags as tags,
    ConsumedQuantity as consumed_quantity,
    ConsumedUnit as consumed_unit,
    -- What the AI API sources say of a row (see sources/ai_billing.py); NULL for other sources.
    json_extract_string(x_ProviderColumns, '$.x_Model') as ai_model,
    json_extract_string(x_ProviderColumns, '$.x_TokenType') as token_type,
    json_extract_string(x_ProviderColumns, '$.x_ApiKeyId') as api_key_id,
    cast(cast(json_extract_string(x_ProviderColumns, '$.x_Requests') as double) as bigint) as requests,
    -- actual (as billed) or estimated (usage × a price table, until the provider's cost arrives)
    coalesce(json_extract_string(x_ProviderColumns, '$.x_CostSource'), 'actual') as cost_source,
    -- A GPU's hour from Prometheus (see sources/prometheus.py): mean utilisation, idle minutes,
    -- the longest idle streak reaching into the hour, minutes without a sample; NULL otherwise.
    -- Read as text then number: an export file's x_ columns are text ("0.0"), a source's numbers.
    cast(json_extract_string(x_ProviderColumns, '$.x_GpuBusyPct') as double) as gpu_busy_pct,
    cast(cast(json_extract_string(x_ProviderColumns, '$.x_IdleMinutes') as double) as integer) as idle_minutes,
    cast(cast(json_extract_string(x_ProviderColumns, '$.x_IdleStreakMinutes') as double) as integer) as idle_streak_minutes,
    cast(cast(json_extract_string(x_ProviderColumns, '$.x_AbsentMinutes') as double) as integer) as absent_minutes,
    x_Source as source
from {{ source('finops', 'raw_billing') }}
