"""A labelled synthetic FOCUS 1.2 bill for benchmarking cost-anomaly detection.

Two providers (AWS, Microsoft Azure), twelve sub-accounts and over a hundred sub-account × service
series of Usage, each with its own resources, SKUs, region and ``team`` tag (about a tenth
untagged). Spend is spread like a real bill (log-normal: a few series at thousands of dollars a
day, most at tens to hundreds, a tail under ten), and every series has the habits that trip naive
detectors: weekly seasonality (dev and staging drop to 20–40 % at weekends, batch analytics is
weekday-heavy, prod is flat), multiplicative noise from 3 % (storage) to 30 % (batch), organic
growth, a year-end dip (Dec 24 – Jan 1) and a month-start peak for batch jobs.

On top of that, two sets of events, both returned as labels:

* anomalies (``benign=False``): ``ANOMALY_KINDS``, spread over the span after its first 90 days,
  each worth well over $100 a day and more than the series' noise. ``account_compute_burst`` gets
  one label per affected series (all sharing one ``event_id``);
* benign events (``benign=True``) a detector must not page for: Purchase fees and Tax on the 1st,
  Credits mid-month, Adjustments, a new service adopted slowly (``slow_adoption``), and the
  ``recovery`` when a level shift, ramp or new SKU ends.

Labels (``LABEL_COLUMNS``) name a window of days, ``start`` to ``end`` inclusive, and the series it
is about: ``series_key`` in the pipeline's form ``sub_account_service:{provider}/{sub_account_id}/
{service_name}`` and ``team`` as the pipeline reports it (``untagged`` without a tag); both are empty
for Purchase and Tax, which are labelled per provider and day. ``expected_impact_usd`` is the cost
above (below, for ``drop_to_zero``) what the series would have billed in the window;
``baseline_usd_per_day`` is that normal cost per day.

Everything comes from one seeded generator, so a seed always gives the same bill. Usage:

    python benchmarks/labelled_bill.py OUT_DIR [--start 2024-01-01 --end 2026-01-01 --seed 7]

writes one Parquet export per billing month under ``OUT_DIR/focus`` (point FINOPS_FOCUS_PATH
there) and the labels to ``OUT_DIR/labels.csv``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from finops_pipeline.detection import series
from finops_pipeline.sources.focus import FOCUS_COLUMNS, TIMESTAMP_COLUMNS, billing_period

ANOMALY_KINDS = ("one_day_spike", "level_shift", "slow_ramp", "drop_to_zero", "new_service", "new_sku",
                 "account_compute_burst", "weekend_like_weekday")
BENIGN_KINDS = ("purchase", "tax", "credit", "adjustment", "slow_adoption", "recovery")
# Events of each kind over the span: 45 windows, a few more labels (a burst labels every series it hits).
QUOTA = {"one_day_spike": 7, "level_shift": 6, "slow_ramp": 5, "drop_to_zero": 6, "new_service": 5, "new_sku": 5,
         "account_compute_burst": 5, "weekend_like_weekday": 6}

WARM_UP_DAYS = 90  # no anomaly before: every detector gets a clean history to learn from
MIN_EXCESS_USD = 150.0  # per day: an anomaly is worth a page (the pipeline's floor is $100)
MIN_DEVIATION = 0.4  # of the series' normal cost, and at least 3× its noise
QUIET_DAYS = 28  # kept free of other events on a series before and after each anomaly
COMMITMENT_DISCOUNT = 0.28
LABEL_COLUMNS = ["label_id", "event_id", "kind", "benign", "start", "end", "provider", "sub_account_id", "service_name",
                 "series_key", "team", "expected_impact_usd", "baseline_usd_per_day", "description"]


@dataclass(frozen=True)
class Service:
    name: str
    category: str
    resource_type: str
    code: str  # the ARN service (AWS) or resource provider namespace (Azure) in ResourceId
    unit: str
    skus: tuple[tuple[str, float], ...]  # (SkuId, unit price); series use the first two, the third is a new SKU
    burstable: bool = False  # VM-like compute that an account-wide burst multiplies
    batch: bool = False  # batch jobs: weekday-heavy, noisy, a month-start peak
    region: str | None = None  # a global service's region, else the account's


@dataclass(frozen=True)
class Account:
    provider: str
    billing_account_id: str
    billing_account_name: str
    sub_account_id: str
    sub_account_name: str
    env: str  # prod, staging, dev, analytics, ml, shared
    region: str
    teams: tuple[str, ...]
    services: tuple[str, ...]  # what it runs from the first day


_S = Service
AWS_SERVICES = {s.name: s for s in (
    _S("Amazon Elastic Compute Cloud", "Compute", "Instance", "ec2", "Hours",
       (("BoxUsage:m7i.2xlarge", 0.4032), ("BoxUsage:c7i.4xlarge", 0.714), ("BoxUsage:p4d.24xlarge", 32.7726)), burstable=True),
    _S("Amazon Elastic Container Service", "Compute", "Task", "ecs", "vCPU-Hours",
       (("Fargate-vCPU-Hours:perCPU", 0.04048), ("Fargate-GB-Hours", 0.004445), ("Fargate-Spot-vCPU-Hours", 0.01334)), burstable=True),
    _S("Amazon Elastic Kubernetes Service", "Compute", "Cluster", "eks", "Hours",
       (("AmazonEKS-Hours:perCluster", 0.10), ("AmazonEKS-AutoMode-Hours", 0.0336), ("AmazonEKS-Hours:extendedSupport", 0.60))),
    _S("AWS Lambda", "Compute", "Function", "lambda", "GB-Seconds",
       (("Lambda-GB-Second", 0.0000166667), ("Lambda-GB-Second-ARM", 0.0000133334), ("Lambda-Provisioned-Concurrency", 0.0000041667))),
    _S("Amazon Relational Database Service", "Databases", "DBInstance", "rds", "Hours",
       (("InstanceUsage:db.r7g.2xlarge", 0.96), ("InstanceUsage:db.m7g.xlarge", 0.336), ("Aurora:ServerlessV2Usage", 0.12))),
    _S("Amazon DynamoDB", "Databases", "Table", "dynamodb", "Requests",
       (("ReadRequestUnits", 0.00000025), ("WriteRequestUnits", 0.00000125), ("ReplWriteRequestUnits", 0.000001875))),
    _S("Amazon ElastiCache", "Databases", "Cluster", "elasticache", "Hours",
       (("NodeUsage:cache.r7g.large", 0.219), ("NodeUsage:cache.m7g.xlarge", 0.316), ("ElastiCache:ServerlessStorage", 0.125))),
    _S("Amazon Simple Storage Service", "Storage", "Bucket", "s3", "GB-Mo",
       (("TimedStorage-ByteHrs", 0.023), ("TimedStorage-INT-FA-ByteHrs", 0.023), ("TimedStorage-GlacierByteHrs", 0.0036))),
    _S("Amazon Elastic File System", "Storage", "FileSystem", "elasticfilesystem", "GB-Mo",
       (("TimedStorage-ByteHrs", 0.30), ("IATimedStorage-ByteHrs", 0.016), ("ProvisionedTP-MiBpsHrs", 6.0))),
    _S("Amazon CloudFront", "Networking", "Distribution", "cloudfront", "GB",
       (("DataTransfer-Out-Bytes", 0.085), ("Requests-Tier1", 0.000001), ("Invalidations", 0.005)), region="global"),
    _S("Amazon Virtual Private Cloud", "Networking", "NatGateway", "ec2", "GB",
       (("NatGateway-Bytes", 0.045), ("NatGateway-Hours", 0.045), ("VpcEndpoint-Hours", 0.01))),
    _S("Amazon Route 53", "Networking", "HostedZone", "route53", "Queries",
       (("DNS-Queries", 0.0000004), ("HostedZone", 0.50), ("Health-Check-AWS", 0.50)), region="global"),
    _S("Amazon CloudWatch", "Management and Governance", "LogGroup", "logs", "GB",
       (("DataProcessing-Bytes", 0.50), ("TimedStorage-ByteHrs", 0.03), ("CW:MetricMonitorUsage", 0.30))),
    _S("AWS Key Management Service", "Security", "Key", "kms", "Requests",
       (("KMS-Requests", 0.00003), ("KMS-Keys", 1.0), ("KMS-AsymmetricRequests", 0.00015))),
    _S("Amazon Redshift", "Analytics", "Cluster", "redshift", "Hours",
       (("Node:ra3.4xlarge", 3.26), ("Node:ra3.xlplus", 1.086), ("RMS:ServerlessUsage", 0.375))),
    _S("AWS Glue", "Analytics", "Job", "glue", "DPU-Hours",
       (("ETL-DPU-Hour", 0.44), ("ETL-Flex-DPU-Hour", 0.29), ("Crawler-DPU-Hour", 0.44)), batch=True),
    _S("Amazon EMR", "Analytics", "Cluster", "elasticmapreduce", "Hours",
       (("BoxUsage:r7g.4xlarge", 0.2142), ("EMR-Serverless-vCPUHours", 0.052624), ("BoxUsage:m7g.4xlarge", 0.163)), batch=True),
    _S("Amazon Athena", "Analytics", "WorkGroup", "athena", "TB",
       (("DataScannedInTB", 5.0), ("ProvisionedDPU-Hours", 0.30), ("DataScannedInTB-Federated", 5.0)), batch=True),
    _S("Amazon Kinesis", "Analytics", "Stream", "kinesis", "Hours",
       (("ShardHour", 0.015), ("PutRequestPayloadUnits", 0.014), ("OnDemand-Stream-Hours", 0.04))),
    _S("Amazon OpenSearch Service", "Analytics", "Domain", "es", "Hours",
       (("ESInstance:r7g.large", 0.167), ("ES:GP3-Storage", 0.122), ("ESInstance:m7g.xlarge", 0.272))),
    _S("Amazon SageMaker", "AI and Machine Learning", "Endpoint", "sagemaker", "Hours",
       (("ml.g5.2xlarge-Hosting", 1.515), ("ml.m5.xlarge-Notebook", 0.23), ("ml.p4d.24xlarge-Training", 37.688)), batch=True),
    _S("Amazon Bedrock", "AI and Machine Learning", "Model", "bedrock", "1K Tokens",
       (("InputTokenCount", 0.003), ("OutputTokenCount", 0.015), ("Embeddings-InputTokenCount", 0.0001))),
)}
AZURE_SERVICES = {s.name: s for s in (
    _S("Virtual Machines", "Compute", "virtualMachines", "Microsoft.Compute/virtualMachines", "Hours",
       (("D16s v5", 0.768), ("E8s v5", 0.504), ("NC24ads A100 v4", 3.673)), burstable=True),
    _S("Azure Kubernetes Service", "Compute", "managedClusters", "Microsoft.ContainerService/managedClusters", "Hours",
       (("Standard Uptime SLA", 0.10), ("Long Term Support", 0.50), ("Premium Uptime SLA", 0.60))),
    _S("Azure App Service", "Compute", "sites", "Microsoft.Web/sites", "Hours",
       (("P1v3", 0.169), ("P2v3", 0.338), ("I1v2", 0.40))),
    _S("Functions", "Compute", "sites", "Microsoft.Web/sites", "GB-Seconds",
       (("Execution Time", 0.000016), ("Total Executions", 0.0000002), ("Flex Consumption", 0.000026))),
    _S("Storage", "Storage", "storageAccounts", "Microsoft.Storage/storageAccounts", "GB-Mo",
       (("Hot LRS Data Stored", 0.0184), ("Cool LRS Data Stored", 0.01), ("Archive LRS Data Stored", 0.00099))),
    _S("SQL Database", "Databases", "servers", "Microsoft.Sql/servers", "Hours",
       (("vCore General Purpose", 0.2522), ("Hyperscale vCore", 0.183), ("vCore Business Critical", 0.6811))),
    _S("Azure Cosmos DB", "Databases", "databaseAccounts", "Microsoft.DocumentDB/databaseAccounts", "100 RU/s-Hours",
       (("100 RU/s", 0.008), ("Data Stored", 0.25), ("Autoscale 100 RU/s", 0.012))),
    _S("Redis Cache", "Databases", "redis", "Microsoft.Cache/redis", "Hours",
       (("C3 Standard", 0.40), ("P1 Premium", 0.554), ("E10 Enterprise", 0.97))),
    _S("Azure Databricks", "Analytics", "workspaces", "Microsoft.Databricks/workspaces", "DBU",
       (("Premium Jobs Compute DBU", 0.30), ("Premium All-purpose Compute DBU", 0.55), ("Premium Serverless SQL DBU", 0.70)), batch=True),
    _S("Azure Data Factory v2", "Analytics", "factories", "Microsoft.DataFactory/factories", "Hours",
       (("Cloud Data Movement", 0.25), ("Cloud Orchestration Activity Run", 0.001), ("Data Flow vCore", 0.274)), batch=True),
    _S("Azure Synapse Analytics", "Analytics", "workspaces", "Microsoft.Synapse/workspaces", "TB",
       (("Serverless SQL Pool Data Processed", 5.0), ("Spark Pool vCore", 0.143), ("Dedicated SQL Pool DWU100", 1.20)), batch=True),
    _S("Azure Machine Learning", "AI and Machine Learning", "workspaces", "Microsoft.MachineLearningServices/workspaces", "Hours",
       (("NC24ads A100 v4", 3.673), ("D4s v3", 0.192), ("ND96asr A100 v4", 27.197)), batch=True),
    _S("Azure OpenAI", "AI and Machine Learning", "accounts", "Microsoft.CognitiveServices/accounts", "1K Tokens",
       (("gpt-4o-Inp-glbl", 0.0025), ("gpt-4o-Outp-glbl", 0.01), ("text-embedding-3-large", 0.00013))),
    _S("Bandwidth", "Networking", "publicIPAddresses", "Microsoft.Network/publicIPAddresses", "GB",
       (("Standard Data Transfer Out", 0.087), ("Inter-Region Data Transfer", 0.02), ("Intra Continent Data Transfer", 0.02))),
    _S("Azure Front Door Service", "Networking", "profiles", "Microsoft.Cdn/profiles", "GB",
       (("Standard Data Transfer Out", 0.083), ("Standard Requests", 0.000009), ("Premium Data Transfer Out", 0.11)), region="global"),
    _S("Load Balancer", "Networking", "loadBalancers", "Microsoft.Network/loadBalancers", "GB",
       (("Standard Data Processed", 0.005), ("Standard Overage LB Rules", 0.01), ("Gateway Data Processed", 0.004))),
    _S("Azure Monitor", "Management and Governance", "workspaces", "Microsoft.OperationalInsights/workspaces", "GB",
       (("Analytics Logs Data Ingestion", 2.30), ("Data Retention", 0.10), ("Basic Logs Data Ingestion", 0.50))),
    _S("Key Vault", "Security", "vaults", "Microsoft.KeyVault/vaults", "10K Operations",
       (("Operations", 0.03), ("Advanced Key Operations", 0.15), ("Certificate Renewal Request", 3.0))),
)}
SERVICES = {"AWS": AWS_SERVICES, "Microsoft Azure": AZURE_SERVICES}

_AWS = ("AWS", "012345678901", "Acme Corp (AWS)")
_AZ = ("Microsoft Azure", "86115370", "Acme Corp EA")
EC2, ECS, EKS, LAMBDA = "Amazon Elastic Compute Cloud", "Amazon Elastic Container Service", "Amazon Elastic Kubernetes Service", "AWS Lambda"
RDS, DDB, CACHE = "Amazon Relational Database Service", "Amazon DynamoDB", "Amazon ElastiCache"
S3, EFS, CDN, VPC, DNS = "Amazon Simple Storage Service", "Amazon Elastic File System", "Amazon CloudFront", "Amazon Virtual Private Cloud", "Amazon Route 53"
CW, KMS = "Amazon CloudWatch", "AWS Key Management Service"
VM, AKS, APP, FUNC = "Virtual Machines", "Azure Kubernetes Service", "Azure App Service", "Functions"
SQL, COSMOS, REDIS, BLOB = "SQL Database", "Azure Cosmos DB", "Redis Cache", "Storage"
BW, AFD, LB, MON, KV = "Bandwidth", "Azure Front Door Service", "Load Balancer", "Azure Monitor", "Key Vault"
ACCOUNTS = (
    Account(*_AWS, "123456789012", "prod-web", "prod", "us-east-1", ("web",),
            (EC2, ECS, LAMBDA, RDS, CACHE, DDB, S3, CDN, VPC, CW, DNS, KMS)),
    Account(*_AWS, "234567890123", "prod-api", "prod", "us-west-2", ("payments",),
            (EC2, EKS, LAMBDA, DDB, RDS, S3, VPC, CW, KMS, "Amazon Kinesis")),
    Account(*_AWS, "345678901234", "staging", "staging", "us-east-1", ("web", "payments", "platform"),
            (EC2, ECS, RDS, S3, VPC, CW, LAMBDA, CACHE)),
    Account(*_AWS, "456789012345", "dev-sandbox", "dev", "us-east-1", ("web", "payments", "platform"),
            (EC2, EKS, S3, LAMBDA, RDS, CW, VPC, DDB, "Amazon SageMaker")),
    Account(*_AWS, "567890123456", "data-platform", "analytics", "us-west-2", ("data",),
            (EC2, S3, "Amazon Redshift", "AWS Glue", "Amazon EMR", "Amazon Athena", "Amazon Kinesis", VPC, CW,
             "Amazon OpenSearch Service", LAMBDA)),
    Account(*_AWS, "678901234567", "ml-training", "ml", "us-west-2", ("ml",),
            (EC2, "Amazon SageMaker", S3, EFS, "Amazon Bedrock", CW, VPC, ECS)),
    Account(*_AWS, "789012345678", "shared-services", "shared", "us-east-1", ("platform",),
            (EC2, S3, CW, DNS, KMS, VPC, EKS, LAMBDA)),
    Account(*_AZ, "3f9c1d2e-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "prod-eu", "prod", "westeurope", ("web", "payments"),
            (VM, AKS, APP, SQL, COSMOS, REDIS, BLOB, BW, AFD, LB, MON, KV)),
    Account(*_AZ, "9b2e7c41-0d3f-4a8e-b6c5-1f2a3b4c5d6e", "staging-eu", "staging", "westeurope", ("web", "platform"),
            (VM, AKS, APP, SQL, BLOB, BW, MON, KV, FUNC)),
    Account(*_AZ, "c4d5e6f7-1a2b-4c3d-9e8f-7a6b5c4d3e2f", "dev-eu", "dev", "northeurope", ("platform", "ml"),
            (VM, APP, FUNC, SQL, BLOB, MON, BW, COSMOS)),
    Account(*_AZ, "5e6f7a8b-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "analytics-eu", "analytics", "westeurope", ("data",),
            (VM, "Azure Databricks", "Azure Data Factory v2", "Azure Synapse Analytics", BLOB, BW, MON, KV, SQL)),
    Account(*_AZ, "7d8e9f0a-3b4c-4d5e-a6f7-8b9c0d1e2f3a", "ml-research", "ml", "swedencentral", ("ml",),
            (VM, "Azure Machine Learning", "Azure OpenAI", BLOB, MON, BW, KV, FUNC)),
)
SUB_ACCOUNT_TYPE = {"AWS": "Member Account", "Microsoft Azure": "Subscription"}

# Median $/day of a series by category, scaled by the account's environment (log-normal around it).
CATEGORY_USD = {"Compute": 300.0, "Databases": 180.0, "Storage": 90.0, "Analytics": 220.0, "AI and Machine Learning": 240.0,
                "Networking": 60.0, "Management and Governance": 25.0, "Security": 6.0}
ENV_SCALE = {"prod": 2.2, "staging": 0.8, "dev": 0.7, "analytics": 1.2, "ml": 1.2, "shared": 0.5}
# Range of the day-to-day noise (coefficient of variation) by category; batch services 22–30 %.
NOISE = {"Storage": (0.02, 0.04), "Security": (0.03, 0.06), "Management and Governance": (0.03, 0.06),
         "Databases": (0.04, 0.07), "Compute": (0.05, 0.12), "Networking": (0.08, 0.15), "Analytics": (0.10, 0.18),
         "AI and Machine Learning": (0.12, 0.22)}
TAX_RATE = {"AWS": 0.07, "Microsoft Azure": 0.05}
SUPPORT = {"AWS": ("shared-services", "AWS Support (Enterprise)", 15000.0), "Microsoft Azure": ("prod-eu", "Azure Support", 6000.0)}
MONTHLY_CREDITS = (("data-platform", EC2, -500.0, "Promotional credit"), ("dev-eu", VM, -250.0, "Azure credit offer"))


def series_key(provider: str, sub_account_id: str, service_name: str) -> str:
    """The pipeline's key for a sub-account × service series."""
    return series.series_key("sub_account_service", provider, sub_account_id, service_name)


@dataclass
class _Line:
    """One sub-account × service series of Usage and its habits."""

    account: Account
    service: Service
    team: str | None  # None: its resources carry no team tag
    base: float  # $/day on a weekday at its first day
    weekend: float  # weekend cost as a share of a weekday's
    noise: float  # coefficient of variation of the multiplicative day-to-day noise
    growth: float  # per year
    year_end_dip: float  # share of the cost gone Dec 24 – Jan 1
    month_start: float  # factor on the 1st and 2nd (batch jobs catching up on the month)
    first: int = 0  # index of its first day
    committed: bool = False  # resource 0 runs under a commitment: BilledCost 0, fee bought on the 1st
    skus: list[str] = field(default_factory=list)
    target: int = -1  # the resource an anomaly's excess is billed on (its last, never the committed one)
    busy: list[tuple[int, int]] = field(default_factory=list)  # day ranges reserved by events

    @property
    def key(self) -> str:
        return series_key(self.account.provider, self.account.sub_account_id, self.service.name)

    @property
    def label_team(self) -> str:
        return self.team or "untagged"  # as the pipeline reports spend without a team tag

    def free(self, lo: int, hi: int, history: int = 60) -> bool:
        """No event on the series in [lo, hi], and ``history`` days of it before."""
        return self.first <= lo - history and all(hi < a or lo > b for a, b in self.busy)


@dataclass
class _Resource:
    line: int
    resource_id: str
    name: str
    sku: str
    price: float
    committed: bool
    share: np.ndarray  # of the series' normal cost, per day over the span


class _Bill:
    """The series, their resources and daily costs, and the labels, built up event by event."""

    def __init__(self, days: pd.DatetimeIndex, rng: np.random.Generator):
        self.days, self.rng, self.n = days, rng, len(days)
        self.weekend = days.day_of_week.to_numpy() >= 5
        self.year_end = ((days.month == 12) & (days.day >= 24)) | ((days.month == 1) & (days.day == 1))
        self.month_start = days.day.to_numpy() <= 2
        self.lines: list[_Line] = []
        self.normal = np.zeros((0, self.n))  # what each series bills without anomalies
        self.excess = np.zeros((0, self.n))  # anomalous cost, billed on the series' last resource
        self.off = np.zeros((0, self.n), dtype=bool)  # days a series bills nothing at all
        self.resources: list[_Resource] = []
        self.labels: list[dict] = []
        self.events = 0

    # --- series ----------------------------------------------------------------------------

    def new_line(self, account: Account, service: Service, first: int = 0, base: float | None = None,
                 adoption: tuple[float, float] | None = None) -> int:
        """Add a series starting on day ``first``; ``adoption`` = (share of its level on day one,
        logistic growth rate per day) for a service taken up slowly."""
        rng, env, cat = self.rng, account.env, service.category
        flat = cat in ("Storage", "Security", "Management and Governance")
        if flat:
            weekend = rng.uniform(0.95, 1.0)
        elif service.batch:
            weekend = rng.uniform(0.35, 0.6)
        elif env in ("dev", "staging"):
            weekend = rng.uniform(0.5, 0.8) if cat in ("Databases", "Networking") else rng.uniform(0.2, 0.4)
        elif env in ("analytics", "ml"):
            weekend = rng.uniform(0.6, 0.9)
        else:
            weekend = rng.uniform(0.85, 1.0)
        if service.batch:
            noise = rng.uniform(0.22, 0.30)
        else:
            noise = rng.uniform(*NOISE[cat]) * (1.3 if env in ("dev", "staging") else 1.0)
        line = _Line(
            account=account,
            service=service,
            team=None if rng.random() < 0.1 else str(rng.choice(account.teams)),
            base=float(np.clip(CATEGORY_USD[cat] * ENV_SCALE[env] * rng.lognormal(0.0, 1.25), 0.5, 20000.0)),
            weekend=weekend,
            noise=noise,
            growth=rng.uniform(0.2, 0.4) if cat == "Storage" else rng.uniform(0.0, 0.4),
            year_end_dip=0.0 if flat else rng.uniform(0.05, 0.12) if env in ("prod", "shared") else rng.uniform(0.2, 0.4),
            month_start=rng.uniform(1.3, 1.7) if service.batch else 1.0,
            first=first,
            committed=env == "prod" and service.burstable and service.name in (EC2, VM),
        )
        if base is not None:
            line.base = base
        t = np.arange(self.n) - first
        level = line.base * (1 + line.growth) ** (t / 365.25)
        level *= np.where(self.weekend, line.weekend, 1.0)
        level *= np.where(self.year_end, 1 - line.year_end_dip, 1.0)
        level *= np.where(self.month_start, line.month_start, 1.0)
        if adoption is not None:
            share, rate = adoption
            level /= 1 + (1 / share - 1) * np.exp(-rate * np.maximum(t, 0))
        # Log-normal noise with mean 1: a noisy series still averages its level.
        level *= np.exp(line.noise * rng.standard_normal(self.n) - line.noise**2 / 2)
        level[t < 0] = 0.0
        index = len(self.lines)
        self.lines.append(line)
        self.normal = np.vstack([self.normal, level])
        self.excess = np.vstack([self.excess, np.zeros(self.n)])
        self.off = np.vstack([self.off, np.zeros(self.n, dtype=bool)])
        self._add_resources(index)
        return index

    def _add_resources(self, index: int) -> None:
        """1–4 resources on 1–2 SKUs sharing the series' cost (with a little day-to-day drift)."""
        line, rng = self.lines[index], self.rng
        n = max(int(rng.integers(1, 5)), 2 if line.committed else 1)
        skus = line.service.skus[: int(rng.integers(1, 3))]
        line.skus = [s for s, _ in skus]
        shares = rng.dirichlet(np.full(n, 2.0))[:, None] * (1 + 0.02 * rng.standard_normal((n, self.n)))
        shares /= shares.sum(axis=0)
        for i in range(n):
            sku, price = skus[i % len(skus)]
            self.resources.append(_Resource(index, self._resource_id(line), self._resource_name(line, i), sku, price,
                                            line.committed and i == 0, shares[i]))
        line.target = len(self.resources) - 1

    def add_resource(self, index: int, sku: str, price: float, share: np.ndarray) -> None:
        line = self.lines[index]
        n = sum(r.line == index for r in self.resources)
        self.resources.append(_Resource(index, self._resource_id(line), self._resource_name(line, n), sku, price, False,
                                        share))

    def cost(self, res: _Resource) -> np.ndarray:
        """A resource's cost per day, anomalies left out."""
        return self.normal[res.line] * res.share

    def _resource_name(self, line: _Line, i: int) -> str:
        return f"{line.account.sub_account_name}-{line.service.resource_type.lower()}-{i}"

    def _resource_id(self, line: _Line) -> str:
        acct, svc = line.account, line.service
        suffix = f"{int(self.rng.integers(0, 2**48)):012x}"
        if acct.provider == "AWS":
            return f"arn:aws:{svc.code}:{svc.region or acct.region}:{acct.sub_account_id}:{svc.resource_type.lower()}/{suffix}"
        return (f"/subscriptions/{acct.sub_account_id}/resourceGroups/rg-{acct.sub_account_name}/providers/{svc.code}"
                f"/{acct.sub_account_name}-{suffix}")

    # --- events ----------------------------------------------------------------------------

    def label(self, kind: str, line: _Line | None, start: int, end: int, impact: float, baseline: float,
              description: str, benign: bool = False, provider: str | None = None, event_id: int | None = None) -> None:
        if event_id is None:
            self.events += 1
            event_id = self.events
        self.labels.append({
            "event_id": event_id, "kind": kind, "benign": benign,
            "start": self.days[start].date(), "end": self.days[end].date(),
            "provider": line.account.provider if line else provider,
            "sub_account_id": line.account.sub_account_id if line else None,
            "service_name": line.service.name if line else None,
            "series_key": line.key if line else None,
            "team": line.label_team if line else None,
            "expected_impact_usd": round(float(impact), 2),
            "baseline_usd_per_day": round(float(baseline), 2),
            "description": description,
        })

    def candidates(self, lo: int, hi: int) -> list[int]:
        """Series free of events in [lo, hi] (with a history before), in random order."""
        return [int(i) for i in self.rng.permutation(len(self.lines)) if self.lines[i].free(lo, hi)]

    def floor(self, line: _Line, baseline: float) -> float:
        """The smallest relative excess that is an anomaly on this series at this level."""
        return max(MIN_DEVIATION, 3 * line.noise, MIN_EXCESS_USD / max(baseline, 1e-9))

    def reserve(self, index: int, lo: int, hi: int) -> None:
        self.lines[index].busy.append((lo - QUIET_DAYS, hi + QUIET_DAYS))

    def recovery(self, index: int, day: int, what: str) -> None:
        """The day a series falls back to normal after an anomaly: a drop no one needs paging for."""
        if day < self.n:
            self.label("recovery", self.lines[index], day, min(day + 6, self.n - 1), 0.0,
                       float(self.normal[index, day:day + 7].mean()), f"back to normal after the {what}", benign=True)


def _one_day_spike(bill: _Bill, t: int) -> bool:
    size = np.exp(bill.rng.uniform(np.log(0.45), np.log(8.0)))  # +45 % to 9x
    for i in bill.candidates(t, t):
        line, base = bill.lines[i], bill.normal[i, t]
        if bill.floor(line, base) > size:
            continue
        bill.excess[i, t] += size * base
        bill.reserve(i, t, t)
        bill.label("one_day_spike", line, t, t, size * base, base, f"one day at {1 + size:.1f}x")
        return True
    return False


def _level_shift(bill: _Bill, t: int) -> bool:
    lasts, size = bill.rng.random() < 0.5, bill.rng.uniform(0.6, 2.0)
    stop = bill.n if lasts else t + int(bill.rng.integers(14, 31))
    for i in bill.candidates(t, stop):
        line, base = bill.lines[i], bill.normal[i, t:t + 14].mean()
        if bill.floor(line, base) > size:
            continue
        bill.excess[i, t:stop] += size * bill.normal[i, t:stop]
        bill.reserve(i, t, stop)
        bill.label("level_shift", line, t, t + 13, bill.excess[i, t:t + 14].sum(), base,
                   f"+{size:.0%} {'to the end' if lasts else f'for {stop - t} days'}")
        bill.recovery(i, stop, "level shift")
        return True
    return False


def _slow_ramp(bill: _Bill, t: int) -> bool:
    rate, days = bill.rng.uniform(0.03, 0.06), int(bill.rng.integers(20, 31))
    factor = np.minimum((1 + rate) ** np.arange(1, days + 1), 4.0)  # capped: someone notices by 4x
    plateau = int(bill.rng.integers(0, 6))
    factor = np.concatenate([factor, np.full(plateau, factor[-1])])
    stop = t + days + plateau
    for i in bill.candidates(t, stop):
        line, base = bill.lines[i], bill.normal[i, t:t + days].mean()
        excess = (factor - 1) * bill.normal[i, t:stop]
        if excess[:days].mean() < MIN_EXCESS_USD or factor[-1] - 1 < bill.floor(line, base):
            continue
        bill.excess[i, t:stop] += excess
        bill.reserve(i, t, stop)
        bill.label("slow_ramp", line, t, t + days - 1, excess[:days].sum(), base,
                   f"+{rate:.1%}/day for {days} days (to {factor[-1]:.1f}x)")
        bill.recovery(i, stop, "ramp")
        return True
    return False


def _drop_to_zero(bill: _Bill, t: int) -> bool:
    days = int(bill.rng.integers(3, 11))
    for i in bill.candidates(t, t + days):
        base = bill.normal[i, t:t + days].mean()
        if base < MIN_EXCESS_USD:
            continue
        bill.off[i, t:t + days] = True
        bill.reserve(i, t, t + days)
        bill.label("drop_to_zero", bill.lines[i], t, t + days - 1, -bill.normal[i, t:t + days].sum(), base,
                   f"no usage for {days} days")
        return True
    return False


def _absent_services(bill: _Bill, provider: str | None = None) -> list[tuple[Account, Service]]:
    """Services an account could take up (the kinds that start with real spend) but has not."""
    present = {(line.account.sub_account_id, line.service.name) for line in bill.lines}
    return [(a, s) for a in ACCOUNTS if provider in (None, a.provider) for s in SERVICES[a.provider].values()
            if s.category in ("Compute", "Databases", "Analytics", "AI and Machine Learning")
            and (a.sub_account_id, s.name) not in present]


def _new_service(bill: _Bill, t: int) -> bool:
    absent = _absent_services(bill)
    account, service = absent[int(bill.rng.integers(len(absent)))]
    i = bill.new_line(account, service, first=t, base=float(np.exp(bill.rng.uniform(np.log(400), np.log(3000)))))
    # Full spend from the first week, whatever its weekends.
    bill.normal[i] *= max(1.0, 300 / bill.normal[i, t:t + 7].mean())
    bill.reserve(i, t, t + 6)
    bill.label("new_service", bill.lines[i], t, t + 6, bill.normal[i, t:t + 7].sum(), 0.0,
               f"new at ${bill.normal[i, t:t + 7].mean():,.0f}/day")
    return True


def _new_sku(bill: _Bill, t: int) -> bool:
    lasts, size = bill.rng.random() < 0.5, bill.rng.uniform(0.5, 2.5)
    stop = bill.n if lasts else t + int(bill.rng.integers(10, 31))
    for i in bill.candidates(t, stop):
        line, base = bill.lines[i], bill.normal[i, t:t + 7].mean()
        sku, price = line.service.skus[2]
        if bill.floor(line, base) > size or sku in line.skus:
            continue
        share = np.zeros(bill.n)
        share[t:stop] = size
        bill.add_resource(i, sku, price, share)
        line.skus.append(sku)
        bill.reserve(i, t, stop)
        bill.label("new_sku", line, t, t + 6, size * bill.normal[i, t:t + 7].sum(), base,
                   f"{sku} at +{size:.0%} {'to the end' if lasts else f'for {stop - t} days'}")
        bill.recovery(i, stop, "new SKU")
        return True
    return False


def _account_compute_burst(bill: _Bill, t: int) -> bool:
    days, factor = int(bill.rng.integers(2, 5)), bill.rng.uniform(3.0, 5.0)
    free = set(bill.candidates(t, t + days))
    by_account: dict[str, list[int]] = {}
    for i in sorted(free):
        line = bill.lines[i]
        if line.service.burstable and bill.normal[i, t:t + days].mean() * (factor - 1) >= MIN_EXCESS_USD:
            by_account.setdefault(line.account.sub_account_id, []).append(i)
    if not by_account:
        return False
    account = sorted(by_account)[int(bill.rng.integers(len(by_account)))]
    bill.events += 1
    for i in by_account[account]:
        excess = (factor - 1) * bill.normal[i, t:t + days]
        bill.excess[i, t:t + days] += excess
        bill.reserve(i, t, t + days)
        bill.label("account_compute_burst", bill.lines[i], t, t + days - 1, excess.sum(),
                   bill.normal[i, t:t + days].mean(), f"account's compute at {factor:.1f}x for {days} days",
                   event_id=bill.events)
    return True


def _weekend_like_weekday(bill: _Bill, t: int) -> bool:
    sat = t + (5 - bill.days[t].day_of_week) % 7
    for i in bill.candidates(sat, sat + 1):
        line = bill.lines[i]
        excess = bill.normal[i, sat:sat + 2] * (1 / line.weekend - 1)  # back to its weekday level
        if line.account.env not in ("dev", "staging") or line.weekend > 0.45 or excess.mean() < MIN_EXCESS_USD:
            continue
        bill.excess[i, sat:sat + 2] += excess
        bill.reserve(i, sat, sat + 1)
        bill.label("weekend_like_weekday", line, sat, sat + 1, excess.sum(), bill.normal[i, sat:sat + 2].mean(),
                   "billed the weekend at its weekday level")
        return True
    return False


EVENTS = {"one_day_spike": _one_day_spike, "level_shift": _level_shift, "slow_ramp": _slow_ramp,
          "drop_to_zero": _drop_to_zero, "new_service": _new_service, "new_sku": _new_sku,
          "account_compute_burst": _account_compute_burst, "weekend_like_weekday": _weekend_like_weekday}


def _slow_adoption(bill: _Bill, t: int, provider: str) -> None:
    """A service taken up over about three months, from a few $/day to a few hundred."""
    absent = _absent_services(bill, provider)
    account, service = absent[int(bill.rng.integers(len(absent)))]
    start, level = bill.rng.uniform(4.0, 8.0), bill.rng.uniform(200.0, 400.0)
    rate = np.log((level / start - 1) / 0.05) / 100  # 95 % of its level after 100 days
    i = bill.new_line(account, service, first=t, base=level, adoption=(start / level, rate))
    end = min(t + 99, bill.n - 1)
    bill.reserve(i, t, end)
    bill.label("slow_adoption", bill.lines[i], t, end, bill.normal[i, t:end + 1].sum(), 0.0,
               f"adopted from ${start:.0f}/day to ${level:.0f}/day over ~3 months", benign=True)


def _schedule(bill: _Bill) -> None:
    """Anomalies spread evenly over the span after the warm-up, kinds in random order."""
    lo, hi = WARM_UP_DAYS, bill.n - 35
    if hi <= lo:
        return
    for fraction, provider in ((0.25, "AWS"), (0.6, "Microsoft Azure")):
        _slow_adoption(bill, lo + int(fraction * (hi - lo)), provider)
    kinds = [k for k, n in QUOTA.items() for _ in range(n)]
    kinds = [kinds[i] for i in bill.rng.permutation(len(kinds))]
    slot = (hi - lo) / len(kinds)
    for n, kind in enumerate(kinds):
        t = lo + int((n + bill.rng.random()) * slot)
        # Nothing free at that time: try a week or two either side.
        for shift in (0, 7, -7, 14, -14, 21):
            if lo <= t + shift < hi and EVENTS[kind](bill, t + shift):
                break


def _timestamps(periods: pd.DatetimeIndex, length: pd.Timedelta = pd.Timedelta(days=1)) -> tuple[pd.DatetimeIndex, ...]:
    """(charge period start, end, billing period start, end) of each period (a day, or ``length``), in UTC."""
    start = periods.tz_localize("UTC").as_unit("us")
    month = periods.to_period("M")
    period_start = month.to_timestamp().tz_localize("UTC").as_unit("us")
    period_end = (month + 1).to_timestamp().tz_localize("UTC").as_unit("us")
    return start, start + length, period_start, period_end


def _usage_rows(bill: _Bill) -> pd.DataFrame:
    """One Usage line item per resource and day it costs anything."""
    cost = np.vstack([bill.cost(res) for res in bill.resources])
    for i, line in enumerate(bill.lines):
        cost[line.target] += bill.excess[i]  # as in real incidents, the excess is one resource's
    lines = np.array([res.line for res in bill.resources])
    cost[bill.off[lines]] = 0.0
    cost = cost.round(6)
    r_idx, d_idx = np.nonzero(cost > 0)
    effective = cost[r_idx, d_idx]

    per_resource = pd.DataFrame([_resource_columns(bill.lines[res.line], res) for res in bill.resources])
    rows = per_resource.take(r_idx).reset_index(drop=True)
    committed = rows.pop("committed").to_numpy(dtype=bool)
    price = rows.pop("price").to_numpy()
    start, end, period_start, period_end = _timestamps(bill.days)
    list_cost = np.where(committed, effective / (1 - COMMITMENT_DISCOUNT), effective).round(6)
    quantity = (list_cost / price).round(6)
    rows = rows.assign(
        BillingPeriodStart=period_start[d_idx], BillingPeriodEnd=period_end[d_idx],
        ChargePeriodStart=start[d_idx], ChargePeriodEnd=end[d_idx],
        BilledCost=np.where(committed, 0.0, effective), EffectiveCost=effective, ListCost=list_cost,
        ContractedCost=effective, PricingQuantity=quantity, ConsumedQuantity=quantity,
        ChargeCategory="Usage", ChargeFrequency="Usage-Based", BillingCurrency="USD",
        PricingCategory=np.where(committed, "Committed", "Standard"),
        CommitmentDiscountId=np.where(committed, rows["CommitmentDiscountId"], None),
        CommitmentDiscountStatus=np.where(committed, "Used", None),
    )
    return rows


def _account_columns(account: Account) -> dict:
    return {
        "BillingAccountId": account.billing_account_id, "BillingAccountName": account.billing_account_name,
        "BillingAccountType": "Billing Account", "SubAccountId": account.sub_account_id,
        "SubAccountName": account.sub_account_name, "SubAccountType": SUB_ACCOUNT_TYPE[account.provider],
        "ProviderName": account.provider, "PublisherName": account.provider, "InvoiceIssuerName": account.provider,
    }


def _commitment_id(line: _Line) -> str:
    return f"{line.account.billing_account_id}:commitment/{line.account.sub_account_name}-{line.service.resource_type.lower()}"


def _resource_columns(line: _Line, res: _Resource) -> dict:
    region = line.service.region or line.account.region
    tags = {"app": res.name, "env": line.account.env}
    if line.team is not None:
        tags["team"] = line.team
    return {
        **_account_columns(line.account),
        "ServiceName": line.service.name, "ServiceCategory": line.service.category,
        "RegionId": region, "RegionName": region, "ResourceId": res.resource_id, "ResourceName": res.name,
        "ResourceType": line.service.resource_type, "SkuId": res.sku, "SkuPriceId": f"{res.sku}:{region}",
        "ChargeDescription": f"{res.sku} in {region}", "PricingUnit": line.service.unit, "ConsumedUnit": line.service.unit,
        "CommitmentDiscountId": _commitment_id(line), "Tags": json.dumps(tags, sort_keys=True),
        "committed": res.committed, "price": res.price,
    }


def _charge(account: Account, day: date, category: str, amount: float, service: str, service_category: str,
            description: str, frequency: str = "One-Time", effective: float | None = None, **fields) -> dict:
    """A non-usage line item (Purchase, Tax, Credit, Adjustment) charged on ``day``."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    period_start, period_end = billing_period(day)
    amount = round(amount, 6)
    return {
        **_account_columns(account), "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end,
        "ChargePeriodStart": start, "ChargePeriodEnd": start + timedelta(days=1), "BillingCurrency": "USD",
        "BilledCost": amount, "EffectiveCost": amount if effective is None else effective, "ListCost": amount,
        "ContractedCost": amount, "ServiceName": service, "ServiceCategory": service_category, "ChargeCategory": category,
        "ChargeDescription": description, "ChargeFrequency": frequency, "Tags": "{}",
        **fields,
    }


def _other_charges(bill: _Bill, usage: pd.DataFrame) -> list[dict]:
    """Purchases and Tax on the 1st, Credits on the 15th, a few Adjustments and SLA credits; each labelled benign."""
    rng, rows = bill.rng, []
    by_name = {a.sub_account_name: a for a in ACCOUNTS}
    days = bill.days
    month_usage = usage.groupby([usage.BillingPeriodStart.dt.strftime("%Y-%m"), "SubAccountId"])["EffectiveCost"].sum()
    committed = [r for r in bill.resources if r.committed]
    for d in np.flatnonzero(days.day == 1):
        day, years = days[d].date(), d / 365.25
        month_end = min(d + days[d].days_in_month, bill.n)
        for provider in SERVICES:
            fees = 0.0
            for res in (r for r in committed if bill.lines[r.line].account.provider == provider):
                # The month's commitment, amortized into the covered usage rows (EffectiveCost 0 here).
                line, fee = bill.lines[res.line], float(bill.cost(res)[d:month_end].sum())
                rows.append(_charge(line.account, day, "Purchase", fee, line.service.name, line.service.category,
                                    f"Monthly commitment fee ({line.service.name})", "Recurring", effective=0.0,
                                    PricingCategory="Committed", CommitmentDiscountId=_commitment_id(line),
                                    ChargePeriodEnd=billing_period(day)[1]))
                fees += fee
            account, service, fee = SUPPORT[provider]
            fee *= 1.15**years
            rows.append(_charge(by_name[account], day, "Purchase", fee, service, "Other", f"{service} monthly fee",
                                "Recurring", PricingCategory="Standard", ChargePeriodEnd=billing_period(day)[1]))
            bill.label("purchase", None, d, d, fees + fee, 0.0, "commitment and support fees", benign=True,
                       provider=provider)
            if d == 0:
                continue  # the previous month's usage is not in the bill
            previous = f"{days[d - 1]:%Y-%m}"
            tax = 0.0
            for account in (a for a in ACCOUNTS if a.provider == provider):
                amount = TAX_RATE[provider] * float(month_usage.get((previous, account.sub_account_id), 0.0))
                rows.append(_charge(account, day, "Tax", amount, "Tax", "Other", f"Sales tax for {days[d - 1]:%B %Y}"))
                tax += amount
            bill.label("tax", None, d, d, tax, 0.0, f"tax on {previous} usage", benign=True, provider=provider)
    by_series = {(line.account.sub_account_name, line.service.name): i for i, line in enumerate(bill.lines)}
    for d in np.flatnonzero((days.day == 15) & (np.arange(bill.n) < 365)):
        for account, service, amount, description in MONTHLY_CREDITS:
            i = by_series[(account, service)]
            rows.append(_charge(by_name[account], days[d].date(), "Credit", amount, service, "Compute", description))
            bill.label("credit", bill.lines[i], d, d, amount, float(bill.normal[i, d]), description, benign=True)
    # SLA credits and billing corrections on established series, anywhere after the first month.
    established = [i for i, line in enumerate(bill.lines) if line.first == 0 and bill.normal[i].mean() >= 100]
    for kind, count in (("credit", 2), ("adjustment", 8)) if bill.n > 60 else ():
        for d in np.sort(rng.choice(np.arange(min(30, bill.n - 1), bill.n), size=count, replace=False)):
            i = int(rng.choice(established))
            line, level = bill.lines[i], float(bill.normal[i, d])
            if kind == "credit":
                amount, description, category = -level * rng.uniform(2, 5), "SLA service credit", "Credit"
            else:
                amount = level * rng.uniform(0.5, 3) * rng.choice([-1, 1])
                description, category = f"Billing correction for {days[d] - pd.Timedelta(days=40):%B %Y}", "Adjustment"
            rows.append(_charge(line.account, days[d].date(), category, amount, line.service.name,
                                line.service.category, description))
            bill.label(kind, line, d, d, amount, level, description, benign=True)
    return rows


def _as_focus(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in ``FOCUS_COLUMNS`` order with the dtypes ``demo.generate`` gives them."""
    filled = set(frame.columns)
    frame = frame.reindex(columns=list(FOCUS_COLUMNS))
    for column, kind in FOCUS_COLUMNS.items():
        if column not in filled:  # a column this bill has no values for, as the demo leaves it
            frame[column] = pd.Series([None] * len(frame), dtype=object, index=frame.index)
        elif column in TIMESTAMP_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
        elif kind.startswith("DECIMAL"):
            frame[column] = frame[column].astype(float)
        elif column == "ChargeClass":
            frame[column] = pd.Series([None] * len(frame), dtype=object, index=frame.index)
        else:
            frame[column] = frame[column].astype("str")
    return frame


def generate(start: date, end: date, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(line items, labels) for the charge days in ``[start, end)``; the same for the same seed."""
    rng = np.random.default_rng(seed)
    bill = _Bill(pd.date_range(start, end, freq="D", inclusive="left"), rng)
    for account in ACCOUNTS:
        for name in account.services:
            bill.new_line(account, SERVICES[account.provider][name])
    _schedule(bill)
    usage = _usage_rows(bill)
    other = pd.DataFrame(_other_charges(bill, usage))
    return in_order(_as_focus(pd.concat([usage, other], ignore_index=True)), bill.labels)


def in_order(items: pd.DataFrame, labels: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated bill as ``generate`` returns it: line items by day, sub-account, service and
    category; labels (``LABEL_COLUMNS`` but the id) by start, numbered in that order."""
    items = items.sort_values(["ChargePeriodStart", "SubAccountId", "ServiceName", "ChargeCategory"], kind="stable",
                              ignore_index=True)
    frame = pd.DataFrame(labels, columns=LABEL_COLUMNS[1:])
    frame = frame.sort_values(["start", "benign", "kind", "series_key"], kind="stable", ignore_index=True)
    frame.insert(0, "label_id", [f"{k}-{n:03d}" for n, k in enumerate(frame["kind"], 1)])
    return items, frame[LABEL_COLUMNS]


def write_focus(line_items: pd.DataFrame, folder: Path) -> list[Path]:
    """One Parquet file per billing month, as a cloud's monthly FOCUS export (timestamps UTC)."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    paths = []
    for period, month in line_items.groupby("BillingPeriodStart", sort=True):
        path = folder / f"focus-{period:%Y-%m}.parquet"
        con.register("month", month)
        con.execute(f"COPY (SELECT * FROM month) TO '{path}' (FORMAT parquet)")
        con.unregister("month")
        paths.append(path)
    return paths


def run(description: str, make, seed: int, start: date = date(2024, 1, 1), end: date = date(2026, 1, 1)) -> None:
    """The command line of a bill generator: ``make(start, end, seed)`` written to OUT_DIR as
    monthly Parquet exports under ``focus/`` and ``labels.csv``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--start", type=date.fromisoformat, default=start)
    parser.add_argument("--end", type=date.fromisoformat, default=end, help="exclusive")
    parser.add_argument("--seed", type=int, default=seed)
    args = parser.parse_args()
    began = time.perf_counter()
    items, labels = make(args.start, args.end, args.seed)
    generated = time.perf_counter() - began
    paths = write_focus(items, args.out_dir / "focus")
    labels.to_csv(args.out_dir / "labels.csv", index=False)
    usage = items[items.ChargeCategory == "Usage"]
    n_series = usage.groupby(["ProviderName", "SubAccountId", "ServiceName"]).ngroups
    print(f"{len(items):,} line items ({len(usage):,} Usage), {n_series} sub-account x service series, "
          f"{args.start}..{args.end} (generated in {generated:.1f} s)")
    print(f"{len(paths)} Parquet files in {args.out_dir / 'focus'}; labels in {args.out_dir / 'labels.csv'}")
    print(labels.groupby(["benign", "kind"]).size().rename("labels").to_string())


if __name__ == "__main__":
    run(__doc__, generate, seed=7)
