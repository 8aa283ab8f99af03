"""A deterministic demo bill in FOCUS 1.2 columns: the pipeline's embedded default source.

Three providers, five sub-accounts, two dozen services. Usage follows weekly seasonality, steady
growth and a year-end dip; about a tenth of the spend carries no ``team`` tag. Every month starts
with Purchase rows (a savings plan, a reservation, enterprise support) and Tax, mid-month brings
Credits, and commitment-covered usage has BilledCost 0 with its amortized EffectiveCost, as FOCUS
prescribes. A handful of anomalies are injected from ``demo_injected_anomalies.csv``, which is also
their ground truth. The AI bill beside it (OpenAI and Anthropic) is ``demo_ai``'s.

Every day is generated on its own from a seed derived from the date, so any partition can be built
alone and is identical every time.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import ClassVar

import numpy as np
import pandas as pd

from finops_pipeline.sources import demo_ai, demo_prometheus
from finops_pipeline.sources.base import CostBasis, Window
from finops_pipeline.sources.focus import FOCUS_COLUMNS, billing_period

SEED = 20250101
GROWTH_EPOCH = date(2025, 1, 1)


@dataclass(frozen=True)
class SubAccount:
    provider: str
    billing_account_id: str
    billing_account_name: str
    sub_account_id: str
    sub_account_name: str
    env: str


@dataclass(frozen=True)
class ServiceLine:
    """One service's usage in one sub-account."""

    account: SubAccount
    service_name: str
    service_category: str
    sku: str
    unit: str
    unit_price: float
    regions: tuple[str, ...]
    team: str | None  # None: the resources carry no team tag
    base_daily: float  # USD of EffectiveCost per day at GROWTH_EPOCH
    weekend_factor: float
    annual_growth: float
    noise: float  # relative standard deviation of day-to-day noise
    n_resources: int
    committed_share: float = 0.0  # share of usage covered by a commitment (BilledCost 0)
    resource_type: str = "Instance"


PROD = SubAccount("AWS", "012345678901", "Acme Corp (AWS)", "123456789012", "prod-web", "prod")
DATA = SubAccount("AWS", "012345678901", "Acme Corp (AWS)", "210987654321", "data-platform", "prod")
SANDBOX = SubAccount("AWS", "012345678901", "Acme Corp (AWS)", "098765432109", "dev-sandbox", "dev")
ML = SubAccount(
    "Microsoft",
    "7a1b2c3d-acme-ea",
    "Acme Corp EA",
    "3f9c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    "ml-research",
    "prod",
)
ANALYTICS = SubAccount(
    "Google Cloud", "01A2B3-C4D5E6-F7A8B9", "Acme Corp GCP", "acme-analytics-prod", "analytics-prod", "prod"
)
SUB_ACCOUNTS = (PROD, DATA, SANDBOX, ML, ANALYTICS)

_AWS_EAST = ("us-east-1", "us-east-2")
_S = ServiceLine
SERVICE_LINES: tuple[ServiceLine, ...] = (
    # prod-web: the customer-facing product
    _S(PROD, "Amazon Elastic Compute Cloud", "Compute", "BoxUsage:m7i.2xlarge", "Hours", 0.4032, _AWS_EAST, "web", 1800, 0.85, 0.25, 0.03, 6, 0.5),
    _S(PROD, "Amazon Relational Database Service", "Databases", "InstanceUsage:db.r7g.2xlarge", "Hours", 0.9600, ("us-east-1",), "web", 600, 1.0, 0.15, 0.02, 2),
    _S(PROD, "Amazon Simple Storage Service", "Storage", "TimedStorage-ByteHrs", "GB-Mo", 0.023, _AWS_EAST, "web", 250, 1.0, 0.35, 0.01, 3, resource_type="Bucket"),
    _S(PROD, "Amazon CloudFront", "Networking", "DataTransfer-Out-Bytes", "GB", 0.085, ("global",), None, 300, 0.7, 0.20, 0.06, 2, resource_type="Distribution"),
    _S(PROD, "AWS Lambda", "Compute", "Lambda-GB-Second", "GB-Seconds", 0.0000166667, _AWS_EAST, "web", 90, 0.8, 0.30, 0.05, 3, resource_type="Function"),
    _S(PROD, "Amazon DynamoDB", "Databases", "ReadRequestUnits", "ReadRequestUnits", 0.00000025, ("us-east-1",), "web", 140, 0.9, 0.20, 0.04, 2, resource_type="Table"),
    _S(PROD, "Amazon ElastiCache", "Databases", "NodeUsage:cache.r7g.large", "Hours", 0.219, ("us-east-1",), "web", 120, 1.0, 0.10, 0.02, 1, resource_type="Cluster"),
    _S(PROD, "Amazon CloudWatch", "Management and Governance", "CW:MetricMonitorUsage", "Metrics", 0.30, ("us-east-1",), None, 60, 1.0, 0.20, 0.03, 1, resource_type="Metric"),
    _S(PROD, "Amazon Virtual Private Cloud", "Networking", "NatGateway-Bytes", "GB", 0.045, _AWS_EAST, None, 110, 0.9, 0.20, 0.05, 1, resource_type="NatGateway"),
    # data-platform: batch pipelines and the warehouse
    _S(DATA, "Amazon Elastic Compute Cloud", "Compute", "BoxUsage:r7i.4xlarge", "Hours", 1.0584, ("us-west-2",), "data", 700, 0.6, 0.30, 0.06, 4),
    _S(DATA, "Amazon Simple Storage Service", "Storage", "TimedStorage-ByteHrs", "GB-Mo", 0.023, ("us-west-2",), "data", 420, 1.0, 0.45, 0.01, 4, resource_type="Bucket"),
    _S(DATA, "Amazon Redshift", "Analytics", "Node:ra3.4xlarge", "Hours", 3.26, ("us-west-2",), "data", 480, 1.0, 0.10, 0.01, 1, resource_type="Cluster"),
    _S(DATA, "Amazon Kinesis", "Analytics", "ShardHour", "Hours", 0.015, ("us-west-2",), "data", 150, 0.9, 0.20, 0.04, 2, resource_type="Stream"),
    _S(DATA, "Amazon Virtual Private Cloud", "Networking", "NatGateway-Bytes", "GB", 0.045, ("us-west-2",), "data", 140, 0.8, 0.20, 0.06, 1, resource_type="NatGateway"),
    _S(DATA, "AWS Glue", "Analytics", "ETL-DPU-Hour", "DPU-Hours", 0.44, ("us-west-2",), "data", 110, 0.4, 0.30, 0.12, 2, resource_type="Job"),
    # dev-sandbox: experiments, loosely tagged
    _S(SANDBOX, "Amazon Elastic Compute Cloud", "Compute", "BoxUsage:t3.xlarge", "Hours", 0.1664, ("us-east-1",), None, 260, 0.35, 0.10, 0.08, 4),
    _S(SANDBOX, "Amazon Simple Storage Service", "Storage", "TimedStorage-ByteHrs", "GB-Mo", 0.023, ("us-east-1",), None, 40, 1.0, 0.20, 0.02, 2, resource_type="Bucket"),
    _S(SANDBOX, "Amazon Elastic Kubernetes Service", "Compute", "AmazonEKS-Hours:perCluster", "Hours", 0.10, ("us-east-1",), "platform", 150, 0.5, 0.15, 0.05, 1, resource_type="Cluster"),
    # ml-research on Azure
    _S(ML, "Virtual Machines", "Compute", "D16s v5", "Hours", 0.768, ("westeurope",), "ml", 520, 0.8, 0.30, 0.05, 3, 0.4, "VirtualMachine"),
    _S(ML, "Azure Machine Learning", "AI and Machine Learning", "NC24ads A100 v4", "Hours", 3.673, ("westeurope",), "ml", 380, 0.6, 0.50, 0.08, 2, resource_type="Workspace"),
    _S(ML, "Storage", "Storage", "Hot LRS Data Stored", "GB-Mo", 0.0184, ("westeurope",), "ml", 130, 1.0, 0.40, 0.01, 2, resource_type="StorageAccount"),
    _S(ML, "Azure OpenAI", "AI and Machine Learning", "gpt-4o-Inp-glbl", "1K Tokens", 0.0025, ("swedencentral",), "ml", 160, 0.7, 0.80, 0.10, 1, resource_type="CognitiveServicesAccount"),
    _S(ML, "Azure Monitor", "Management and Governance", "Analytics Logs Data Ingestion", "GB", 2.30, ("westeurope",), None, 45, 1.0, 0.20, 0.04, 1, resource_type="Workspace"),
    _S(ML, "Bandwidth", "Networking", "Standard Data Transfer Out", "GB", 0.087, ("westeurope",), "ml", 35, 0.9, 0.20, 0.05, 1, resource_type="VirtualMachine"),
    # analytics-prod on Google Cloud
    _S(ANALYTICS, "BigQuery", "Analytics", "Analysis (on-demand)", "TiB", 6.25, ("US",), "data", 340, 0.5, 0.30, 0.10, 2, resource_type="Dataset"),
    _S(ANALYTICS, "Compute Engine", "Compute", "N2 Instance Core running", "Hours", 0.031611, ("us-central1",), "data", 210, 0.9, 0.20, 0.04, 2),
    _S(ANALYTICS, "Cloud Storage", "Storage", "Standard Storage US Multi-region", "GB-Mo", 0.026, ("US",), "data", 95, 1.0, 0.30, 0.01, 2, resource_type="Bucket"),
    _S(ANALYTICS, "Cloud Run", "Compute", "CPU Allocation Time", "vCPU-Seconds", 0.000024, ("us-central1",), "data", 55, 0.7, 0.50, 0.07, 2, resource_type="Service"),
    _S(ANALYTICS, "Cloud Logging", "Management and Governance", "Log Volume", "GiB", 0.50, ("global",), None, 30, 1.0, 0.20, 0.04, 1, resource_type="LogBucket"),
)

COMMITMENT_DISCOUNT = 0.28  # committed rate is 28 % below on-demand
SUPPORT_FEE = 1500.0  # AWS Enterprise Support, monthly, at GROWTH_EPOCH
TAX_RATE = {"AWS": 0.07, "Google Cloud": 0.06}
MONTHLY_CREDIT = ("AWS", DATA, "Amazon Elastic Compute Cloud", -400.0)  # on the 15th
ONE_OFF_CREDITS = {date(2025, 9, 10): (PROD, "Amazon Elastic Compute Cloud", -5000.0, "SLA service credit")}


@dataclass(frozen=True)
class InjectedAnomaly:
    name: str
    kind: str
    start_date: date
    end_date: date  # inclusive
    provider: str
    sub_account_id: str
    service_name: str
    multiplier: float
    story: str

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


@cache
def injected_anomalies() -> tuple[InjectedAnomaly, ...]:
    """The ground truth: the anomalies the generator injects."""
    text = resources.files("finops_pipeline.sources").joinpath("demo_injected_anomalies.csv").read_text()
    return tuple(
        InjectedAnomaly(
            name=r["name"],
            kind=r["kind"],
            start_date=date.fromisoformat(r["start_date"]),
            end_date=date.fromisoformat(r["end_date"]),
            provider=r["provider"],
            sub_account_id=r["sub_account_id"],
            service_name=r["service_name"],
            multiplier=float(r["multiplier"]),
            story=r["story"],
        )
        for r in csv.DictReader(text.splitlines())
    )


def _stable_int(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@cache
def _resource_weights(line: ServiceLine) -> np.ndarray:
    rng = np.random.default_rng(_stable_int(SEED, line.account.sub_account_id, line.service_name))
    return rng.dirichlet(np.full(line.n_resources, 2.0))


def _resource_id(line: ServiceLine, index: int) -> str:
    suffix = f"{_stable_int(line.account.sub_account_id, line.service_name, index):016x}"[:12]
    region = line.regions[index % len(line.regions)]
    acct = line.account
    if acct.provider == "AWS":
        return f"arn:aws:{line.resource_type.lower()}:{region}:{acct.sub_account_id}:{line.resource_type.lower()}/r-{suffix}"
    if acct.provider == "Microsoft":
        return (
            f"/subscriptions/{acct.sub_account_id}/resourceGroups/rg-{acct.sub_account_name}"
            f"/providers/Microsoft.{line.resource_type}/{line.resource_type.lower()}-{suffix}"
        )
    return f"//{line.service_name.lower().replace(' ', '')}.googleapis.com/projects/{acct.sub_account_id}/{line.resource_type.lower()}s/r-{suffix}"


def _tags(line: ServiceLine, index: int) -> str:
    tags = {"env": line.account.env, "app": f"{line.account.sub_account_name}-{index}"}
    if line.team is not None:
        tags["team"] = line.team
    return json.dumps(tags, sort_keys=True)


def _level(line: ServiceLine, day: date) -> float:
    """Expected daily EffectiveCost before noise: growth, weekly seasonality and a year-end dip."""
    years = (day - GROWTH_EPOCH).days / 365.25
    level = line.base_daily * math.exp(math.log1p(line.annual_growth) * years)
    if day.weekday() >= 5:
        level *= line.weekend_factor
    if (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day == 1):
        level *= 0.85 if line.service_category in ("Compute", "Analytics") else 0.97
    return level


def _row(line_account: SubAccount, day: date, **fields: object) -> dict:
    bp_start, bp_end = billing_period(day)
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    row = dict.fromkeys(FOCUS_COLUMNS)
    row.update(
        BillingAccountId=line_account.billing_account_id,
        BillingAccountName=line_account.billing_account_name,
        BillingAccountType="Billing Account",
        SubAccountId=line_account.sub_account_id,
        SubAccountName=line_account.sub_account_name,
        SubAccountType={"AWS": "Member Account", "Microsoft": "Subscription", "Google Cloud": "Project"}[
            line_account.provider
        ],
        BillingPeriodStart=bp_start,
        BillingPeriodEnd=bp_end,
        ChargePeriodStart=start,
        ChargePeriodEnd=start + timedelta(days=1),
        BillingCurrency="USD",
        ProviderName=line_account.provider,
        PublisherName=line_account.provider,
        InvoiceIssuerName=line_account.provider,
        Tags="{}",
    )
    row.update(fields)
    return row


def _usage_rows(line: ServiceLine, day: date, rng: np.random.Generator) -> list[dict]:
    level = _level(line, day)
    total = level * max(0.05, 1.0 + line.noise * rng.standard_normal())
    shares = _resource_weights(line) * (1.0 + 0.02 * rng.standard_normal(line.n_resources))
    costs = total * shares / shares.sum()
    for anomaly in injected_anomalies():
        if (
            anomaly.covers(day)
            and anomaly.sub_account_id == line.account.sub_account_id
            and anomaly.service_name == line.service_name
        ):
            # The excess lands on one resource, as it does in real incidents.
            costs[0] += total * (anomaly.multiplier - 1.0)
    rows = []
    for index, effective in enumerate(costs):
        committed = index == 0 and line.committed_share > 0
        list_cost = effective / (1 - COMMITMENT_DISCOUNT) if committed else effective
        quantity = list_cost / line.unit_price
        rows.append(
            _row(
                line.account,
                day,
                BilledCost=0.0 if committed else round(effective, 6),
                EffectiveCost=round(effective, 6),
                ListCost=round(list_cost, 6),
                ContractedCost=round(effective, 6),
                ServiceName=line.service_name,
                ServiceCategory=line.service_category,
                RegionId=line.regions[index % len(line.regions)],
                RegionName=line.regions[index % len(line.regions)],
                ResourceId=_resource_id(line, index),
                ResourceName=f"{line.account.sub_account_name}-{line.resource_type.lower()}-{index}",
                ResourceType=line.resource_type,
                SkuId=f"{line.sku}",
                SkuPriceId=f"{line.sku}:{line.regions[index % len(line.regions)]}",
                ChargeCategory="Usage",
                ChargeDescription=f"{line.sku} in {line.regions[index % len(line.regions)]}",
                ChargeFrequency="Usage-Based",
                PricingCategory="Committed" if committed else "Standard",
                PricingQuantity=round(quantity, 6),
                PricingUnit=line.unit,
                ConsumedQuantity=round(quantity, 6),
                ConsumedUnit=line.unit,
                CommitmentDiscountId=(
                    f"{line.account.billing_account_id}:commitment/{line.service_name.lower().replace(' ', '-')}"
                    if committed
                    else None
                ),
                CommitmentDiscountStatus="Used" if committed else None,
                Tags=_tags(line, index),
            )
        )
    return rows


def _committed_month_cost(line: ServiceLine, day: date) -> float:
    """What a commitment covering resource 0 of ``line`` costs for the month of ``day``."""
    month_start, month_end = billing_period(day)
    days = (month_end - month_start).days
    return float(_resource_weights(line)[0]) * _level(line, month_start.date() + timedelta(days=14)) * days


def _first_of_month_rows(day: date) -> list[dict]:
    rows = []
    for line in SERVICE_LINES:
        if line.committed_share > 0:
            fee = _committed_month_cost(line, day)
            rows.append(
                _row(
                    line.account,
                    day,
                    BilledCost=round(fee, 6),
                    EffectiveCost=0.0,  # amortized into the covered usage rows
                    ListCost=round(fee, 6),
                    ContractedCost=round(fee, 6),
                    ServiceName=line.service_name,
                    ServiceCategory=line.service_category,
                    ChargeCategory="Purchase",
                    ChargeFrequency="Recurring",
                    ChargeDescription=f"Monthly commitment fee ({line.service_name})",
                    PricingCategory="Committed",
                    CommitmentDiscountId=f"{line.account.billing_account_id}:commitment/{line.service_name.lower().replace(' ', '-')}",
                    ChargePeriodEnd=billing_period(day)[1],
                )
            )
    support = SUPPORT_FEE * math.exp(math.log1p(0.2) * (day - GROWTH_EPOCH).days / 365.25)
    rows.append(
        _row(
            PROD,
            day,
            BilledCost=round(support, 6),
            EffectiveCost=round(support, 6),
            ListCost=round(support, 6),
            ContractedCost=round(support, 6),
            ServiceName="AWS Support (Enterprise)",
            ServiceCategory="Other",
            ChargeCategory="Purchase",
            ChargeFrequency="Recurring",
            ChargeDescription="AWS Enterprise Support monthly fee",
            PricingCategory="Standard",
            ChargePeriodEnd=billing_period(day)[1],
        )
    )
    # Tax on the previous month's usage, billed on the 1st.
    prev = day - timedelta(days=1)
    prev_days = prev.day
    for account in SUB_ACCOUNTS:
        rate = TAX_RATE.get(account.provider)
        if rate is None:
            continue
        usage = sum(_level(l, prev) for l in SERVICE_LINES if l.account == account) * prev_days
        tax = round(usage * rate, 6)
        rows.append(
            _row(
                account,
                day,
                BilledCost=tax,
                EffectiveCost=tax,
                ListCost=tax,
                ContractedCost=tax,
                ServiceName="Tax",
                ServiceCategory="Other",
                ChargeCategory="Tax",
                ChargeFrequency="One-Time",
                ChargeDescription=f"Sales tax for {prev:%B %Y}",
            )
        )
    return rows


def _credit_row(account: SubAccount, service: str, amount: float, description: str, day: date) -> dict:
    return _row(
        account,
        day,
        BilledCost=amount,
        EffectiveCost=amount,
        ListCost=0.0,
        ContractedCost=amount,
        ServiceName=service,
        ServiceCategory="Compute",
        ChargeCategory="Credit",
        ChargeFrequency="One-Time",
        ChargeDescription=description,
    )


def generate_day(day: date) -> list[dict]:
    """All FOCUS line items whose charge period starts on ``day`` (UTC)."""
    rng = np.random.default_rng([SEED, day.toordinal()])
    rows: list[dict] = []
    for line in SERVICE_LINES:
        rows.extend(_usage_rows(line, day, rng))
    if day.day == 1:
        rows.extend(_first_of_month_rows(day))
    if day.day == 15:
        _, account, service, amount = MONTHLY_CREDIT
        rows.append(_credit_row(account, service, amount, "Promotional credit", day))
    if day in ONE_OFF_CREDITS:
        account, service, amount, description = ONE_OFF_CREDITS[day]
        rows.append(_credit_row(account, service, amount, description, day))
    return rows


def generate(start: date, end: date) -> pd.DataFrame:
    """FOCUS line items for the charge days in ``[start, end)``, columns in ``FOCUS_COLUMNS`` order."""
    rows: list[dict] = []
    day = start
    while day < end:
        rows.extend(generate_day(day))
        day += timedelta(days=1)
    return pd.DataFrame(rows, columns=list(FOCUS_COLUMNS))


# Share of a day's usage in each UTC hour: busier in working hours, a trough at night.
_HOURLY_SHAPE = np.array([0.6 + 0.8 * math.exp(-(((h - 14) / 4.5) ** 2)) for h in range(24)])
HOURLY_SHARE = _HOURLY_SHAPE / _HOURLY_SHAPE.sum()
_PER_UNIT = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity", "ConsumedQuantity"]


def bill(start: date, end: date) -> pd.DataFrame:
    """What the demo source serves for the charge days in ``[start, end)``: the cloud bill
    (``generate``), the AI APIs' bill (``demo_ai``) and the GPU cluster's (``demo_prometheus``),
    whose rows carry their ``x_`` columns."""
    frame = pd.concat([generate(start, end), demo_ai.generate(start, end), demo_prometheus.generate(start, end)],
                      ignore_index=True)
    for column in ("x_Requests", "x_IdleMinutes", "x_IdleStreakMinutes", "x_AbsentMinutes"):
        frame[column] = frame[column].astype("Int64")
    return frame


def generate_hourly(start: datetime, end: datetime) -> pd.DataFrame:
    """The demo bill (``bill``) for the charge hours in ``[start, end)`` (naive UTC datetimes), as
    an hourly export carries it: each day's usage spread over its hours by ``HOURLY_SHARE`` (the
    GPU cluster's rows are hourly already);
    purchases, tax and credits stay one row in the day's first hour."""
    first, last = pd.Timestamp(start).floor("D"), pd.Timestamp(end).ceil("D")
    daily = bill(first.date(), last.date())
    # The GPU cluster's rows are by the hour already.
    by_hour = (daily.ChargePeriodEnd - daily.ChargePeriodStart) == pd.Timedelta(hours=1)
    usage = daily[(daily.ChargeCategory == "Usage") & ~by_hour]
    hours = np.tile(np.arange(24), len(usage))
    hourly = usage.loc[usage.index.repeat(24)].reset_index(drop=True)
    share = HOURLY_SHARE[hours]
    for column in _PER_UNIT:
        hourly[column] = (pd.to_numeric(hourly[column]) * share).round(6)
    hourly["x_Requests"] = (hourly["x_Requests"].astype(float) * share).round().astype("Int64")
    offset = pd.to_timedelta(hours, unit="h")
    hourly["ChargePeriodStart"] = hourly["ChargePeriodStart"] + offset
    hourly["ChargePeriodEnd"] = hourly["ChargePeriodStart"] + pd.Timedelta(hours=1)
    out = pd.concat([hourly, daily[(daily.ChargeCategory != "Usage") | by_hour]], ignore_index=True)
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    out = out[(out.ChargePeriodStart >= lo) & (out.ChargePeriodStart < hi)]
    return out.sort_values(["ChargePeriodStart", "SubAccountId", "ServiceName"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class DemoSource:
    """The embedded demo bill: deterministic, so every run and every test sees the same one."""

    name: ClassVar[str] = "demo"
    cost_basis: ClassVar[CostBasis] = "actual"

    @classmethod
    def from_settings(cls, settings) -> DemoSource:
        return cls()

    def fetch(self, window: Window) -> pd.DataFrame:
        if window.grain.periods_per_day > 1:  # an export by the hour
            return generate_hourly(window.start, window.end)
        return bill(window.start, window.end)
