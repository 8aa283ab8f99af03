"""The FOCUS 1.2 columns the pipeline stores in ``raw_billing``, with their DuckDB types.

Identifiers stay strings (account ids keep their leading zeros), timestamps are UTC, costs are
DECIMAL so sums reconcile with the provider's invoice to the cent.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

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
    "BilledCost": "DECIMAL(18, 6)",
    "EffectiveCost": "DECIMAL(18, 6)",
    "ListCost": "DECIMAL(18, 6)",
    "ContractedCost": "DECIMAL(18, 6)",
    "BillingCurrency": "VARCHAR",
    "ProviderName": "VARCHAR",
    "PublisherName": "VARCHAR",
    "InvoiceIssuerName": "VARCHAR",
    "ServiceName": "VARCHAR",
    "ServiceCategory": "VARCHAR",
    "RegionId": "VARCHAR",
    "RegionName": "VARCHAR",
    "ResourceId": "VARCHAR",
    "ResourceName": "VARCHAR",
    "ResourceType": "VARCHAR",
    "SkuId": "VARCHAR",
    "SkuPriceId": "VARCHAR",
    "ChargeCategory": "VARCHAR",
    "ChargeClass": "VARCHAR",
    "ChargeDescription": "VARCHAR",
    "ChargeFrequency": "VARCHAR",
    "PricingCategory": "VARCHAR",
    "PricingQuantity": "DECIMAL(18, 6)",
    "PricingUnit": "VARCHAR",
    "ConsumedQuantity": "DECIMAL(18, 6)",
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

# Columns a line item cannot be loaded without.
REQUIRED_COLUMNS = ("BillingAccountId", "BillingCurrency", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
                    "BilledCost", "EffectiveCost", "ServiceName", "ProviderName")


def billing_period(day: date) -> tuple[datetime, datetime]:
    """The calendar month holding ``day``, as UTC [start, end)."""
    start = datetime(day.year, day.month, 1, tzinfo=timezone.utc)
    return start, datetime(day.year + (day.month == 12), day.month % 12 + 1, 1, tzinfo=timezone.utc)
