"""A second labelled FOCUS 1.2 bill, of another design than ``labelled_bill.py``, so that detection
can be reported on a bill its thresholds were not chosen on.

``labelled_bill.py`` builds resources of AWS and Azure services around a log-normal level with
weekly habits, and gives every anomaly well over $150 a day. This one draws each series as a
stochastic process of its own *profile*, on Google Cloud and AWS services the other bill does not
have much of, and makes anomalies the way FinOps teams meet them on small and bursty services:

* profiles: ``steady`` (AR(1) noise of 3–8 %), ``weekly`` (CI runners, clusters: weekends at
  30–60 %), ``bursty`` (heavy-tailed: log-Student-t noise, σ 0.3–0.6: BigQuery, Lambda, Athena)
  and ``intermittent`` (batch jobs and training runs on some days, near-idle on the others:
  Vertex AI, Cloud TPU, SageMaker, Glue, EMR); levels log-uniform from $10 to $2,500 a day;
* anomalies worth $300–$3,000 **in total**, mostly spread over days: ``sustained_shift`` (+40–80 %
  for 10–16 days), ``compounding_ramp`` (5 %/day for 14 days), ``partial_drop`` (to 2–10 % for
  7–10 days), ``spike`` (one day), ``job_doubled`` (an intermittent series' jobs twice their size
  for three weeks), ``jobs_every_day`` (an intermittent series running every day for ten days) and
  ``lost_export`` (a sub-account × service missing from the bill for 4–7 days while the rest of
  it arrives);
* benign events: ``gradual_adoption`` (a new service growing over six weeks),
  ``month_start_recurring`` (a monthly job on the 1st, part of the series' habit) and the
  ``purchase`` of commitments on the 1st.

Labels have ``labelled_bill.LABEL_COLUMNS`` and its meaning, so ``detection_metrics`` scores both
bills alike. One seed gives one bill. Usage:

    python benchmarks/bursty_bill.py OUT_DIR [--start 2024-01-01 --end 2026-01-01 --seed 11]
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks.labelled_bill import _timestamps, in_order, run, series_key  # noqa: E402
from finops_pipeline.sources.focus import FOCUS_COLUMNS, TIMESTAMP_COLUMNS, billing_period  # noqa: E402

WARM_UP_DAYS = 120  # no event before: every detector has four months of history
QUIET_DAYS = 21  # around each anomaly, no other event on its series
IMPACT_USD = (300.0, 3000.0)  # an anomaly's total excess (or shortfall), whatever its length
QUOTA = {"spike": 8, "sustained_shift": 7, "compounding_ramp": 5, "partial_drop": 5, "job_doubled": 4,
         "jobs_every_day": 4, "lost_export": 4}

# provider → (billing account id, name); sub-accounts (projects, member accounts) → (id, env, team, services)
BILLING = {"Google Cloud": ("01A2B3-C4D5E6-F7A8B9", "Globex GCP"), "AWS": ("210987654321", "Globex AWS")}
# service → (category, unit, price per unit, the profiles it may take)
CATALOGUE = {
    "Google Cloud": {
        "Compute Engine": ("Compute", "Hours", 0.0475, ("steady", "weekly")),
        "Cloud Storage": ("Storage", "GB-Month", 0.02, ("steady",)),
        "BigQuery": ("Analytics", "TiB", 6.25, ("bursty",)),
        "Vertex AI": ("AI and Machine Learning", "Node Hours", 3.47, ("intermittent", "bursty")),
        "Cloud TPU": ("AI and Machine Learning", "Chip Hours", 1.2, ("intermittent",)),
        "Kubernetes Engine": ("Compute", "Hours", 0.1, ("weekly", "steady")),
        "Cloud Run": ("Compute", "vCPU-Seconds", 0.000024, ("bursty",)),
        "Cloud SQL": ("Databases", "Hours", 0.0413, ("steady",)),
        "Cloud Logging": ("Management and Governance", "GiB", 0.5, ("steady", "bursty")),
    },
    "AWS": {
        "Amazon SageMaker": ("AI and Machine Learning", "Hrs", 4.1, ("intermittent", "bursty")),
        "AWS Glue": ("Analytics", "DPU-Hour", 0.44, ("intermittent",)),
        "AWS CodeBuild": ("Developer Tools", "Build-Minutes", 0.005, ("weekly",)),
        "AWS Lambda": ("Compute", "GB-Seconds", 0.0000166667, ("bursty",)),
        "Amazon Elastic Compute Cloud": ("Compute", "Hrs", 0.096, ("steady", "weekly")),
        "Amazon Simple Storage Service": ("Storage", "GB-Mo", 0.023, ("steady",)),
        "Amazon Athena": ("Analytics", "Terabytes", 5.0, ("bursty",)),
        "Amazon EMR": ("Analytics", "Hrs", 0.27, ("intermittent",)),
        "Amazon CloudWatch": ("Management and Governance", "Metrics", 0.3, ("steady",)),
    },
}
PROJECTS = {
    "Google Cloud": [
        ("ml-research-4821", "ml", "ml", ("Vertex AI", "Cloud TPU", "Cloud Storage", "Compute Engine", "BigQuery")),
        ("analytics-prod-1177", "prod", "data", ("BigQuery", "Cloud Storage", "Cloud SQL", "Cloud Logging", "Cloud Run")),
        ("web-prod-3093", "prod", "web", ("Kubernetes Engine", "Cloud SQL", "Cloud Run", "Cloud Logging", "Cloud Storage")),
        ("ci-5510", "ci", "platform", ("Compute Engine", "Kubernetes Engine", "Cloud Storage")),
        ("sandbox-8802", "dev", None, ("Compute Engine", "BigQuery", "Vertex AI", "Cloud Storage")),
    ],
    "AWS": [
        ("310000000001", "prod", "ml", ("Amazon SageMaker", "Amazon Simple Storage Service", "Amazon Elastic Compute Cloud",
                                        "Amazon CloudWatch")),
        ("310000000002", "prod", "data", ("AWS Glue", "Amazon Athena", "Amazon EMR", "Amazon Simple Storage Service",
                                          "AWS Lambda")),
        ("310000000003", "ci", "platform", ("AWS CodeBuild", "Amazon Elastic Compute Cloud", "Amazon Simple Storage Service")),
        ("310000000004", "prod", "web", ("AWS Lambda", "Amazon Elastic Compute Cloud", "Amazon CloudWatch",
                                         "Amazon Simple Storage Service")),
        ("310000000005", "dev", None, ("Amazon Elastic Compute Cloud", "Amazon SageMaker", "AWS Lambda")),
    ],
}
ACCOUNT_NAMES = {"310000000001": "ml-prod", "310000000002": "data-lake", "310000000003": "ci-runners",
                 "310000000004": "web-prod", "310000000005": "sandbox"}
REGION = {"Google Cloud": "us-central1", "AWS": "eu-west-1"}


@dataclass
class _Series:
    provider: str
    account_id: str
    account_name: str
    env: str
    team: str | None
    service: str
    profile: str
    level: float  # typical daily cost in USD (an intermittent series: one job's)
    normal: np.ndarray  # daily cost without anomalies
    first: int = 0
    job_days: np.ndarray | None = None  # intermittent: the days it runs a job
    excess: np.ndarray = field(default=None)  # anomalous cost per day (negative: missing cost)
    missing: np.ndarray = field(default=None)  # days it has no line items at all
    busy: list[tuple[int, int]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return series_key(self.provider, self.account_id, self.service)

    def free(self, lo: int, hi: int) -> bool:
        return self.first + 60 <= lo and all(hi < a or lo > b for a, b in self.busy)


class _Bill:
    def __init__(self, days: pd.DatetimeIndex, rng: np.random.Generator):
        self.days, self.rng, self.n = days, rng, len(days)
        self.weekend = days.day_of_week.to_numpy() >= 5
        self.series: list[_Series] = []
        self.labels: list[dict] = []

    # --- the series' normal cost, by profile ------------------------------------------------

    def _process(self, profile: str, level: float) -> tuple[np.ndarray, np.ndarray | None]:
        rng, n, t = self.rng, self.n, np.arange(self.n)
        growth = (1 + rng.uniform(-0.05, 0.25)) ** (t / 365.25)
        if profile == "intermittent":
            if rng.random() < 0.5:  # on fixed weekdays
                weekdays = rng.choice(7, size=int(rng.integers(1, 4)), replace=False)
                jobs = np.isin(self.days.day_of_week.to_numpy(), weekdays)
            else:
                jobs = rng.random(n) < rng.uniform(0.15, 0.4)
            size = level * growth * rng.lognormal(0, 0.25, n)
            return 0.03 * level * growth + np.where(jobs, size, 0.0), jobs
        if profile == "bursty":
            sigma = rng.uniform(0.3, 0.6)
            noise = np.exp(sigma * np.clip(rng.standard_t(4, n), -4, 6) - sigma**2 / 2)
            return level * growth * noise, None
        sigma = rng.uniform(0.03, 0.08) if profile == "steady" else rng.uniform(0.05, 0.12)
        ar = np.zeros(n)
        shocks = rng.normal(0, sigma, n)
        for i in range(1, n):
            ar[i] = 0.6 * ar[i - 1] + shocks[i]
        weekly = np.where(self.weekend, rng.uniform(0.3, 0.6), 1.0) if profile == "weekly" else 1.0
        return level * growth * weekly * np.exp(ar), None

    def add(self, provider: str, account_id: str, env: str, team: str | None, service: str, first: int = 0,
            level: float | None = None, profile: str | None = None) -> _Series:
        profile = profile or str(self.rng.choice(CATALOGUE[provider][service][3]))
        level = level or float(np.exp(self.rng.uniform(np.log(10), np.log(2500))))
        normal, jobs = self._process(profile, level)
        normal[:first] = 0.0
        name = ACCOUNT_NAMES.get(account_id, account_id)
        s = _Series(provider, account_id, name, env, team, service, profile, level, normal, first, jobs,
                    np.zeros(self.n), np.zeros(self.n, dtype=bool))
        self.series.append(s)
        return s

    # --- labels -----------------------------------------------------------------------------

    def label(self, kind: str, s: _Series | None, lo: int, hi: int, impact: float, description: str,
              benign: bool = False, provider: str | None = None) -> None:
        self.labels.append({
            "event_id": len(self.labels) + 1, "kind": kind, "benign": benign,
            "start": self.days[lo].date(), "end": self.days[hi].date(),
            "provider": s.provider if s else provider, "sub_account_id": s.account_id if s else None,
            "service_name": s.service if s else None, "series_key": s.key if s else None,
            "team": (s.team or "untagged") if s else None, "expected_impact_usd": round(float(impact), 2),
            "baseline_usd_per_day": round(float(s.normal[lo:hi + 1].mean()), 2) if s else 0.0,
            "description": description,
        })

    # --- anomalies: each returns whether it found a series and days for itself ----------------

    def _place(self, length: int, fits) -> tuple[_Series, int] | None:
        """A series free for ``length`` days from a random day after the warm-up that ``fits``."""
        for _ in range(200):
            lo = int(self.rng.integers(WARM_UP_DAYS, self.n - length - 1))
            hi = lo + length - 1
            for i in self.rng.permutation(len(self.series)):
                s = self.series[i]
                if s.free(lo - QUIET_DAYS, hi + QUIET_DAYS) and fits(s, lo, hi):
                    s.busy.append((lo - QUIET_DAYS, hi + QUIET_DAYS))
                    return s, lo
        return None

    def _scaled(self, kind: str, length: int, profiles: tuple[str, ...], shape) -> bool:
        """An anomaly whose excess per day is ``shape(normal) `` over ``length`` days, on a series of
        one of ``profiles`` whose total excess lands in IMPACT_USD."""
        def fits(s: _Series, lo: int, hi: int) -> bool:
            total = abs(shape(s.normal[lo:hi + 1]).sum())
            return s.profile in profiles and IMPACT_USD[0] <= total <= IMPACT_USD[1]

        placed = self._place(length, fits)
        if placed is None:
            return False
        s, lo = placed
        hi = lo + length - 1
        excess = shape(s.normal[lo:hi + 1])
        s.excess[lo:hi + 1] += excess
        self.label(kind, s, lo, hi, excess.sum(), f"{kind.replace('_', ' ')} on {s.service} ({s.profile})")
        return True

    def sustained_shift(self) -> bool:
        rise = self.rng.uniform(0.4, 0.8)
        return self._scaled("sustained_shift", int(self.rng.integers(10, 17)), ("steady", "weekly", "bursty"),
                            lambda normal: rise * normal)

    def compounding_ramp(self) -> bool:
        return self._scaled("compounding_ramp", 14, ("steady", "weekly"),
                            lambda normal: normal * (1.05 ** np.arange(1, len(normal) + 1) - 1))

    def partial_drop(self) -> bool:
        keep = self.rng.uniform(0.02, 0.1)
        return self._scaled("partial_drop", int(self.rng.integers(7, 11)), ("steady", "weekly"),
                            lambda normal: -(1 - keep) * normal)

    def spike(self) -> bool:
        target = float(np.exp(self.rng.uniform(np.log(IMPACT_USD[0]), np.log(IMPACT_USD[1]))))

        def fits(s: _Series, lo: int, hi: int) -> bool:
            # Worth paging only where it stands out: at least 2.5× the series' normal day and its
            # largest day of the last two months.
            return (s.profile != "intermittent" and target >= 1.5 * s.normal[lo]
                    and s.normal[lo] + target >= 1.5 * s.normal[max(0, lo - 60):lo].max())

        placed = self._place(1, fits)
        if placed is None:
            return False
        s, lo = placed
        s.excess[lo] += target
        self.label("spike", s, lo, lo, target, f"one-day spike on {s.service} ({s.profile})")
        return True

    def job_doubled(self) -> bool:
        def fits(s: _Series, lo: int, hi: int) -> bool:
            if s.profile != "intermittent":
                return False
            extra = (s.normal[lo:hi + 1] - 0.03 * s.level) * s.job_days[lo:hi + 1]
            return IMPACT_USD[0] <= extra.sum() <= IMPACT_USD[1]

        placed = self._place(21, fits)
        if placed is None:
            return False
        s, lo = placed
        extra = (s.normal[lo:lo + 21] - 0.03 * s.level) * s.job_days[lo:lo + 21]
        s.excess[lo:lo + 21] += extra
        self.label("job_doubled", s, lo, lo + 20, extra.sum(), f"{s.service} jobs twice their size")
        return True

    def jobs_every_day(self) -> bool:
        def extra(s: _Series, lo: int) -> np.ndarray:
            return np.where(s.job_days[lo:lo + 10], 0.0, s.level)

        placed = self._place(10, lambda s, lo, hi: s.profile == "intermittent"
                             and IMPACT_USD[0] <= extra(s, lo).sum() <= IMPACT_USD[1])
        if placed is None:
            return False
        s, lo = placed
        s.excess[lo:lo + 10] += extra(s, lo)
        self.label("jobs_every_day", s, lo, lo + 9, extra(s, lo).sum(), f"{s.service} running a job every day")
        return True

    def lost_export(self) -> bool:
        length = int(self.rng.integers(4, 8))
        placed = self._place(length, lambda s, lo, hi: s.profile in ("steady", "weekly")
                             and IMPACT_USD[0] <= s.normal[lo:hi + 1].sum() <= IMPACT_USD[1])
        if placed is None:
            return False
        s, lo = placed
        s.missing[lo:lo + length] = True
        self.label("lost_export", s, lo, lo + length - 1, -s.normal[lo:lo + length].sum(),
                   f"no line items for {s.service} in {s.account_name} while the rest of the bill arrives")
        return True


def _line_items(bill: _Bill) -> pd.DataFrame:
    """Each series' daily cost split over its resources, one Usage line item per resource and day."""
    return usage_line_items(bill.series, bill.rng, _timestamps(bill.days), lambda p, s: CATALOGUE[p][s][:3], BILLING,
                            REGION, lambda p: "Project" if p == "Google Cloud" else "Member Account")


def usage_line_items(series, rng: np.random.Generator, timestamps, price_of, billing: dict, region: dict,
                     sub_account_type) -> pd.DataFrame:
    """Each of ``series`` (provider, account_id, account_name, env, team, service, and per period
    normal, excess and missing) split over its resources (one to three, fixed shares), one Usage
    line item per resource and period it costs anything. ``timestamps``: ``labelled_bill._timestamps``
    of the periods; ``price_of(provider, service)``: (category, pricing unit, unit price);
    ``billing``: provider → (billing account id, name); ``sub_account_type(provider)``."""
    start, end, period_start, period_end = timestamps
    frames = []
    for n, s in enumerate(series):
        billing_id, billing_name = billing[s.provider]
        category, unit, price = price_of(s.provider, s.service)
        shares = rng.dirichlet(np.ones(int(rng.integers(1, 4))) * 3)
        # A drop takes every resource down alike; an excess is one resource's, as in real incidents.
        cost = np.outer(shares, s.normal + np.minimum(s.excess, 0.0))
        cost[0] += np.maximum(s.excess, 0.0)
        cost = np.clip(cost, 0.0, None).round(6)
        cost[:, s.missing] = 0.0
        r_idx, d_idx = np.nonzero(cost > 0)
        effective = cost[r_idx, d_idx]
        tags = {"env": s.env, **({"team": s.team} if s.team else {})}
        where = region[s.provider]
        resource = np.array([f"{s.account_id}/{s.service.lower().replace(' ', '-')}/r{n}-{k}" for k in range(len(shares))])
        sku = f"{s.service[:3].upper()}-{zlib.crc32(s.service.encode()) % 10_000:04d}"
        frames.append(pd.DataFrame({
            "BillingAccountId": billing_id, "BillingAccountName": billing_name, "BillingAccountType": "Billing Account",
            "SubAccountId": s.account_id, "SubAccountName": s.account_name, "SubAccountType": sub_account_type(s.provider),
            "ProviderName": s.provider, "PublisherName": s.provider, "InvoiceIssuerName": s.provider,
            "BillingPeriodStart": period_start[d_idx], "BillingPeriodEnd": period_end[d_idx],
            "ChargePeriodStart": start[d_idx], "ChargePeriodEnd": end[d_idx],
            "BilledCost": effective, "EffectiveCost": effective, "ListCost": effective, "ContractedCost": effective,
            "BillingCurrency": "USD", "ServiceName": s.service, "ServiceCategory": category,
            "RegionId": where, "RegionName": where, "ResourceId": resource[r_idx], "ResourceName": resource[r_idx],
            "ResourceType": category, "SkuId": sku, "SkuPriceId": f"{sku}:{where}", "ChargeCategory": "Usage",
            "ChargeDescription": f"{s.service} usage", "ChargeFrequency": "Usage-Based", "PricingCategory": "Standard",
            "PricingQuantity": (effective / price).round(6), "PricingUnit": unit,
            "ConsumedQuantity": (effective / price).round(6), "ConsumedUnit": unit, "Tags": json.dumps(tags, sort_keys=True),
        }))
    return pd.concat(frames, ignore_index=True)


def _purchases(bill: _Bill) -> pd.DataFrame:
    """A commitment fee per provider on every 1st, labelled benign."""
    rows = []
    for d in np.flatnonzero(bill.days.day == 1):
        day = bill.days[d].date()
        for provider, (billing_id, billing_name) in BILLING.items():
            fee = round(4000.0 * (1.1 ** (d / 365.25)), 2)
            account_id = PROJECTS[provider][0][0]
            period_start, period_end = billing_period(day)
            start = pd.Timestamp(day, tz="UTC")
            rows.append({
                "BillingAccountId": billing_id, "BillingAccountName": billing_name, "SubAccountId": account_id,
                "SubAccountName": ACCOUNT_NAMES.get(account_id, account_id), "ProviderName": provider,
                "PublisherName": provider, "InvoiceIssuerName": provider, "BillingPeriodStart": period_start,
                "BillingPeriodEnd": period_end, "ChargePeriodStart": start, "ChargePeriodEnd": pd.Timestamp(period_end),
                "BilledCost": fee, "EffectiveCost": fee, "ListCost": fee, "ContractedCost": fee, "BillingCurrency": "USD",
                "ServiceName": "Committed use discounts" if provider == "Google Cloud" else "Savings Plans for Compute usage",
                "ServiceCategory": "Compute", "ChargeCategory": "Purchase", "ChargeDescription": "Monthly commitment fee",
                "ChargeFrequency": "Recurring", "PricingCategory": "Committed", "Tags": "{}",
            })
            bill.label("purchase", None, d, d, fee, "monthly commitment fee", benign=True, provider=provider)
    return pd.DataFrame(rows)


def _focus(frame: pd.DataFrame) -> pd.DataFrame:
    """The FOCUS columns in order, timestamps in UTC, costs as floats; a column a row has no value
    for is null (not the text "nan")."""
    frame = frame.reindex(columns=list(FOCUS_COLUMNS))
    for column, kind in FOCUS_COLUMNS.items():
        if column in TIMESTAMP_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
        elif kind.startswith("DECIMAL"):
            frame[column] = frame[column].astype(float)
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def generate(start: date, end: date, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(line items, labels) for the charge days in ``[start, end)``; the same for the same seed."""
    rng = np.random.default_rng(seed)
    bill = _Bill(pd.date_range(start, end, freq="D", inclusive="left"), rng)
    for provider, projects in PROJECTS.items():
        for account_id, env, team, services in projects:
            for service in services:
                s = bill.add(provider, account_id, env, team, service)
                if rng.random() < 0.15 and s.profile in ("steady", "weekly"):  # a monthly job on the 1st
                    firsts = np.flatnonzero(bill.days.day == 1)
                    s.normal[firsts] += 3 * s.level
                    for d in firsts[firsts >= WARM_UP_DAYS]:
                        bill.label("month_start_recurring", s, d, d, 3 * s.level, "monthly job on the 1st", benign=True)
    # Services adopted over six weeks, part-way through the span.
    for provider, service, account_id in (("Google Cloud", "Vertex AI", "analytics-prod-1177"),
                                          ("AWS", "Amazon Athena", "310000000004")):
        first = int(rng.integers(WARM_UP_DAYS, bill.n - 120))
        env, team = next((e, t) for a, e, t, _ in PROJECTS[provider] if a == account_id)
        s = bill.add(provider, account_id, env, team, service, first=first, level=float(rng.uniform(100, 800)),
                     profile="steady")
        t = np.arange(bill.n) - first
        s.normal *= np.where(t >= 0, 1 / (1 + np.exp(-(t - 21) / 5)), 0.0)  # 5 % → 95 % over six weeks
        s.busy.append((first - QUIET_DAYS, first + 42 + QUIET_DAYS))
        bill.label("gradual_adoption", s, first, min(first + 41, bill.n - 1), 0.0,
                   f"{service} adopted over six weeks", benign=True)
    made = {kind: 0 for kind in QUOTA}
    for _ in range(3):
        for kind, quota in QUOTA.items():
            while made[kind] < quota and getattr(bill, kind)():
                made[kind] += 1
    usage = _line_items(bill)
    return in_order(_focus(pd.concat([usage, _purchases(bill)], ignore_index=True)), bill.labels)


if __name__ == "__main__":
    run(__doc__, generate, seed=11)
