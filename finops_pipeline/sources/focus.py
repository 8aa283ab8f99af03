"""The FOCUS 1.2 columns the pipeline stores in ``raw_billing``, with their DuckDB types.

Identifiers stay strings (account ids keep their leading zeros), timestamps are UTC, costs and
quantities are exact decimals so sums reconcile with the provider's invoice to the cent.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

# Wide enough for real bills. Costs: eight decimals (providers bill fractions of a cent) up to
# $10 billion a line item, in 64 bits, which keeps sums fast. Quantities: byte counts pass 10^12.
COST = "DECIMAL(18, 8)"
QUANTITY = "DECIMAL(38, 12)"

FOCUS_COLUMNS: dict[str, str] = {
    "BillingAccountId": "VARCHAR",
    "BillingAccountName": "VARCHAR",
    "BillingAccountType": "VARCHAR",
    "SubAccountId": "VARCHAR",
    "SubAccountName": "VARCHAR",
    "SubAccountType": "VARCHAR",
    "BillingPeriodStart": "TIMESTAMPTZ",
    "BillingPeriodEnd": "TIMESTAMPTZ",
    "ChargePeriodStart": "TIMESTAMPTZ",
    "ChargePeriodEnd": "TIMESTAMPTZ",
    "BilledCost": COST,
    "EffectiveCost": COST,
    "ListCost": COST,
    "ContractedCost": COST,
    "BillingCurrency": "VARCHAR",
    "ProviderName": "VARCHAR",
    "PublisherName": "VARCHAR",
    "InvoiceIssuerName": "VARCHAR",
    "ServiceName": "VARCHAR",
    "ServiceCategory": "VARCHAR",
    "ServiceSubcategory": "VARCHAR",
    "RegionId": "VARCHAR",
    "RegionName": "VARCHAR",
    "ResourceId": "VARCHAR",
    "ResourceName": "VARCHAR",
    "ResourceType": "VARCHAR",
    "SkuId": "VARCHAR",
    "SkuPriceId": "VARCHAR",
    "SkuMeter": "VARCHAR",
    "ChargeCategory": "VARCHAR",
    "ChargeClass": "VARCHAR",
    "ChargeDescription": "VARCHAR",
    "ChargeFrequency": "VARCHAR",
    "PricingCategory": "VARCHAR",
    "PricingQuantity": QUANTITY,
    "PricingUnit": "VARCHAR",
    "ConsumedQuantity": QUANTITY,
    "ConsumedUnit": "VARCHAR",
    "CommitmentDiscountId": "VARCHAR",
    "CommitmentDiscountStatus": "VARCHAR",
    "Tags": "JSON",
}

# Columns the pipeline adds: where a row came from (source, file, row), and the provider's own
# x_ columns packed as JSON.
LINEAGE_COLUMNS: dict[str, str] = {
    "x_Source": "VARCHAR",
    "x_SourceFile": "VARCHAR",
    "x_SourceRow": "BIGINT",
    "x_ProviderColumns": "JSON",
}

NUMERIC_COLUMNS = [c for c, t in FOCUS_COLUMNS.items() if t.startswith("DECIMAL")]
TIMESTAMP_COLUMNS = [c for c, t in FOCUS_COLUMNS.items() if t == "TIMESTAMPTZ"]

CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")

# Columns whose values are money or say where and when it was spent: a bad value in one of them
# rejects the row's billing period. A bad value elsewhere (a quantity, a tag) is loaded as NULL.
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

# Columns a line item cannot be loaded without.
REQUIRED_COLUMNS = ("BillingAccountId", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
                    "BilledCost", "EffectiveCost", "ServiceName", "ProviderName")


def billing_period(day: date) -> tuple[datetime, datetime]:
    """The calendar month holding ``day``, as UTC [start, end)."""
    start = datetime(day.year, day.month, 1, tzinfo=timezone.utc)
    return start, datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=timezone.utc)
