"""AWS Cost Explorer (`get_cost_and_usage`) normalized to FOCUS line items.

One line item per day (or hour), linked account and service, with UnblendedCost as BilledCost
and AmortizedCost as EffectiveCost. Cost Explorer has no charge category per group: the "Tax"
service becomes Tax, negative amounts (refunds, credits) Credit, everything else Usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar
from datetime import date, datetime, timezone

import boto3
import pandas as pd
from botocore.exceptions import ClientError

from finops_pipeline.sources.base import CostBasis, Window
from finops_pipeline.sources.focus import FOCUS_COLUMNS, billing_period

THROTTLING = {"ThrottlingException", "LimitExceededException", "RequestLimitExceeded", "TooManyRequestsException"}


def fetch(
    client,
    start: date,
    end: date,
    granularity: str = "DAILY",
    max_attempts: int = 6,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict]:
    """Every ``ResultsByTime`` entry for ``[start, end)``, following NextPageToken; throttling is
    retried with exponential backoff (1, 2, 4… s), at most ``max_attempts`` times per page."""
    request = {
        # HOURLY takes UTC timestamps, DAILY plain dates.
        "TimePeriod": {"Start": _period_text(start, granularity), "End": _period_text(end, granularity)},
        "Granularity": granularity,
        "Metrics": ["UnblendedCost", "AmortizedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    results, token = [], None
    while True:
        for attempt in range(max_attempts):
            try:
                page = client.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
                break
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in THROTTLING or attempt == max_attempts - 1:
                    raise
                sleep(2.0**attempt)
        results.extend(page["ResultsByTime"])
        token = page.get("NextPageToken")
        if not token:
            return results


def _period_text(value: date, granularity: str) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if granularity == "HOURLY" else value.isoformat()


def _timestamp(value: str) -> datetime:
    if "T" in value:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)


def to_focus(results: list[dict], billing_account_id: str | None = None) -> pd.DataFrame:
    """FOCUS line items from ``get_cost_and_usage`` results grouped by LINKED_ACCOUNT and SERVICE."""
    rows = []
    for period in results:
        start, end = _timestamp(period["TimePeriod"]["Start"]), _timestamp(period["TimePeriod"]["End"])
        month, next_month = billing_period(start.date())
        for group in period.get("Groups", []):
            account, service = group["Keys"]
            unblended = group["Metrics"]["UnblendedCost"]
            amortized = group["Metrics"]["AmortizedCost"]
            billed, effective = float(unblended["Amount"]), float(amortized["Amount"])
            category = "Tax" if service == "Tax" else ("Credit" if billed < 0 else "Usage")
            row = dict.fromkeys(FOCUS_COLUMNS)
            row.update(
                BillingAccountId=billing_account_id or account,
                SubAccountId=account,
                BillingPeriodStart=month,
                BillingPeriodEnd=next_month,
                ChargePeriodStart=start,
                ChargePeriodEnd=end,
                BilledCost=billed,
                EffectiveCost=effective,
                ListCost=billed,
                BillingCurrency=unblended["Unit"],
                ProviderName="AWS",
                PublisherName="AWS",
                InvoiceIssuerName="AWS",
                ServiceName=service,
                ServiceCategory="Other",  # Cost Explorer does not say
                ChargeCategory=category,
                ChargeDescription=f"{service} ({category.lower()}), from Cost Explorer",
                Tags="{}",
            )
            rows.append(row)
    return pd.DataFrame(rows, columns=list(FOCUS_COLUMNS))



@dataclass(frozen=True)
class CostExplorerSource:
    """AWS Cost Explorer, with credentials found the usual AWS way (environment, profile, role)."""

    name: ClassVar[str] = "aws_cost_explorer"
    cost_basis: ClassVar[CostBasis] = "actual"
    billing_account_id: str | None = None

    @classmethod
    def from_settings(cls, settings) -> CostExplorerSource:
        return cls(settings.aws_billing_account_id)

    def fetch(self, window: Window) -> pd.DataFrame:
        client = boto3.client("ce", region_name="us-east-1")  # Cost Explorer's one endpoint
        return to_focus(fetch(client, window.start, window.end, window.grain.cost_explorer_granularity),
                        self.billing_account_id)
