"""A labelled *hourly* FOCUS 1.2 bill, to measure the pipeline's detection at
``FINOPS_GRANULARITY=hourly``: cloud monitoring data, priced as line items.

``labelled_bill.py`` and ``bursty_bill.py`` are daily bills. This one draws 29 sub-account × service
series on AWS and Microsoft Azure hour by hour, each split over one to three resources with fixed
shares and a stochastic process of its own *profile*, at levels log-uniform from $0.40 to $40 an hour:

* ``diurnal`` (web and API fleets): a daily cycle peaking mid-afternoon UTC with troughs at 30–60 %
  of the peak, weekends lower, AR(1) log-noise of 3–10 %, slow growth;
* ``business_hours`` (CI runners, dev boxes): busy on weekdays 08–19 UTC, at 5–15 % otherwise,
  with heavy-tailed hourly noise;
* ``nightly_batch`` (ETL): a run every night from a fixed hour, 2–5 hours (heavy-tailed), near-idle otherwise;
* ``heavy_tailed`` (GPU inference, serverless, query engines): diurnal times log-Student-t noise
  (3–4 degrees of freedom, σ 0.3–0.6);
* ``flat`` (storage, databases, always-on VMs): 1–2 % noise and slow growth;
* ``intermittent`` (ML training): runs of 3–20 hours starting at random a few times a week, near-idle
  otherwise.

In every series 0.3–0.5 % of hours are missing at random (a missed scrape: no row), single and unlabelled.

Anomalies (``benign=False``), none in the first 60 days (the pipeline's warm-up), each worth
$150–$3,000 in total, with five quiet days around it on its series: ``retry_loop`` (3–8 hours at
4–10× an API's normal cost), ``left_running`` (an on/off series kept at its busy level through its
idle hours for 1–3 days), ``cryptominer`` (a small compute series at 3–6× its mean, flat around the
clock, for 1–3 days), ``level_shift`` (+50–100 % for 2–5 days), ``outage_drop`` (down to 5–15 % for
6–24 hours) and ``lost_export`` (one series without line items for 12–48 hours while the rest of
the bill arrives).

Benign events (``benign=True``): ``scrape_gap`` (2–4 hours of a series missing, one to three per
series anywhere in the span), ``launch_peak`` (+30–50 % for 4–8 afternoon hours on a diurnal
series), ``monthly_job`` (2–3 hours on the 1st on two series, part of their habit: labelled after
the warm-up) and the ``purchase`` of commitments per provider on the 1st.

Labels have ``labelled_bill.LABEL_COLUMNS`` and its meaning, by the hour: ``start`` and ``end`` are
the first and last hour of the event (naive UTC timestamps, both inclusive), ``expected_impact_usd``
the excess over the window (negative: missing cost) and ``baseline_usd_per_day`` the series' normal
cost in the window per day (its mean hour × 24). Score with ``detection_metrics`` at ``step="h"``.
One seed gives one bill. Usage:

    python benchmarks/hourly_bill.py OUT_DIR [--start 2025-01-01 --end 2025-06-01 --seed 13]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks.bursty_bill import _focus, usage_line_items  # noqa: E402
from benchmarks.labelled_bill import _timestamps, in_order, run, series_key  # noqa: E402
from finops_pipeline.sources.focus import billing_period  # noqa: E402

WARM_UP_H = 60 * 24  # no anomaly before: the pipeline's warm-up
QUIET_H = 5 * 24  # around each event, no other event on its series
IMPACT_USD = (150.0, 3000.0)  # an anomaly's total excess (or shortfall), whatever its length
QUOTA = {"retry_loop": 7, "left_running": 6, "cryptominer": 5, "level_shift": 6, "outage_drop": 5, "lost_export": 5}
LAUNCH_PEAKS = 5
TIERS = {"S": (0.4, 3.0), "M": (3.0, 12.0), "L": (12.0, 40.0)}  # $/hour at the busy level, log-uniform within
ON_OFF = ("business_hours", "nightly_batch", "intermittent")  # profiles with busy and idle hours
STEADY = ("diurnal", "flat", "heavy_tailed")  # profiles that bill about the same every hour of a kind

BILLING = {"AWS": ("418273645091", "Initech AWS"), "Microsoft Azure": ("80451972", "Initech EA")}
SUB_ACCOUNT_TYPE = {"AWS": "Member Account", "Microsoft Azure": "Subscription"}
REGION = {"AWS": "us-east-1", "Microsoft Azure": "westeurope"}
CATALOGUE = {  # service → (category, pricing unit, unit price)
    "AWS": {
        "Amazon Elastic Compute Cloud": ("Compute", "Hrs", 0.192), "AWS Lambda": ("Compute", "GB-Seconds", 0.0000166667),
        "Amazon Elastic Container Service": ("Compute", "vCPU-Hours", 0.04048),
        "Amazon CloudFront": ("Networking", "GB", 0.085), "Amazon Simple Storage Service": ("Storage", "GB-Mo", 0.023),
        "Amazon Relational Database Service": ("Databases", "Hrs", 0.96),
        "Amazon DynamoDB": ("Databases", "WriteRequestUnits", 0.00000125),
        "AWS Glue": ("Analytics", "DPU-Hour", 0.44), "Amazon EMR": ("Analytics", "Hrs", 0.27),
        "Amazon Athena": ("Analytics", "Terabytes", 5.0), "AWS CodeBuild": ("Developer Tools", "Build-Minutes", 0.005),
        "Amazon SageMaker": ("AI and Machine Learning", "Hrs", 4.1),
    },
    "Microsoft Azure": {
        "Virtual Machines": ("Compute", "Hours", 0.768), "Azure App Service": ("Compute", "Hours", 0.169),
        "Container Instances": ("Compute", "vCPU-Hours", 0.0486), "Functions": ("Compute", "GB-Seconds", 0.000016),
        "SQL Database": ("Databases", "Hours", 0.2522), "Storage": ("Storage", "GB-Mo", 0.0184),
        "Azure Databricks": ("Analytics", "DBU", 0.30), "Azure Data Factory v2": ("Analytics", "Hours", 0.25),
        "Azure Machine Learning": ("AI and Machine Learning", "Hours", 3.673),
        "Azure OpenAI": ("AI and Machine Learning", "1K Tokens", 0.0025),
    },
}
EC2, VM = "Amazon Elastic Compute Cloud", "Virtual Machines"
# sub-accounts: (provider, id, name, env, team or None for untagged, its series as (service, profile, tier))
ACCOUNTS = (
    ("AWS", "521300000011", "storefront-prod", "prod", "web", (
        (EC2, "diurnal", "L"), ("Amazon CloudFront", "diurnal", "M"),
        ("Amazon Relational Database Service", "flat", "M"), ("AWS Lambda", "heavy_tailed", "M"))),
    ("AWS", "521300000012", "payments-api", "prod", "payments", (
        ("Amazon Elastic Container Service", "diurnal", "M"), ("Amazon DynamoDB", "heavy_tailed", "M"),
        (EC2, "flat", "S"))),
    ("AWS", "521300000013", "data-etl", "prod", "data", (
        ("AWS Glue", "nightly_batch", "L"), ("Amazon EMR", "nightly_batch", "M"),
        ("Amazon Athena", "heavy_tailed", "M"), ("Amazon Simple Storage Service", "flat", "M"))),
    ("AWS", "521300000014", "ci-build", "ci", "platform", (
        ("AWS CodeBuild", "business_hours", "M"), (EC2, "business_hours", "L"))),
    ("AWS", "521300000015", "ml-lab", "ml", "ml", (
        ("Amazon SageMaker", "intermittent", "L"), (EC2, "intermittent", "M"))),
    ("AWS", "521300000016", "dev-sandbox", "dev", None, ((EC2, "flat", "S"), ("AWS Lambda", "diurnal", "S"))),
    ("Microsoft Azure", "3c7a91e2-5b4d-4f60-9e1a-2d8c6b0f4a17", "web-eu", "prod", "web", (
        (VM, "diurnal", "L"), ("Azure App Service", "diurnal", "S"), ("SQL Database", "flat", "M"),
        ("Functions", "heavy_tailed", "S"))),
    ("Microsoft Azure", "8f2d6c14-0a9b-4e73-b5d1-7c3e9a2f6b80", "analytics-eu", "prod", "data", (
        ("Azure Databricks", "nightly_batch", "L"), ("Azure Data Factory v2", "nightly_batch", "S"),
        ("Storage", "flat", "S"))),
    ("Microsoft Azure", "b61e0f47-93c2-4d8a-a0f5-1e7b4c9d2a63", "devtest-eu", "dev", None, (
        (VM, "business_hours", "M"), ("Container Instances", "diurnal", "S"))),
    ("Microsoft Azure", "e4a8b2d9-6f13-4c05-8b7e-3a9d1c5f0e24", "ml-eu", "ml", "ml", (
        ("Azure Machine Learning", "intermittent", "L"), ("Azure OpenAI", "heavy_tailed", "M"), (VM, "flat", "S"))),
)


@dataclass
class _Series:
    provider: str
    account_id: str
    account_name: str
    env: str
    team: str | None
    service: str
    profile: str
    normal: np.ndarray  # hourly cost without events
    peak: np.ndarray | None  # on/off profiles: what an hour costs when busy
    active: np.ndarray | None  # on/off profiles: the busy hours
    excess: np.ndarray  # event cost per hour (negative: missing cost)
    missing: np.ndarray  # hours without line items
    events: list[tuple[int, int]] = field(default_factory=list)  # hour windows of its events
    anomalies: int = 0

    @property
    def key(self) -> str:
        return series_key(self.provider, self.account_id, self.service)

    @property
    def compute(self) -> bool:
        return CATALOGUE[self.provider][self.service][0] == "Compute"

    def free(self, lo: int, hi: int) -> bool:
        return all(hi + QUIET_H < a or lo - QUIET_H > b for a, b in self.events)


class _Bill:
    def __init__(self, hours: pd.DatetimeIndex, rng: np.random.Generator):
        self.hours, self.rng, self.n = hours, rng, len(hours)
        self.hod = hours.hour.to_numpy()
        self.weekend = hours.day_of_week.to_numpy() >= 5
        self.firsts = np.flatnonzero((hours.day.to_numpy() == 1) & (self.hod == 0))
        self.series: list[_Series] = []
        self.labels: list[dict] = []

    # --- the series' normal cost, by profile ------------------------------------------------

    def _ar1(self, sigma: float, phi: float = 0.9) -> np.ndarray:
        """Log-noise of stationary deviation ``sigma``, correlated from hour to hour (pandas' ewm
        runs the AR(1) recursion in C: y = φ·y + (1 − φ)·x)."""
        x = self.rng.normal(0.0, sigma * np.sqrt(1 - phi**2), self.n) / (1 - phi)
        x[0] = self.rng.normal(0.0, sigma)  # started in its stationary law, not at a 10× shock
        return pd.Series(x).ewm(alpha=1 - phi, adjust=False).mean().to_numpy()

    def _process(self, profile: str, level: float) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(normal hourly cost, busy-hour cost, busy hours) of a series of ``profile`` at ``level`` $/h."""
        rng, n, hod = self.rng, self.n, self.hod
        trend = level * (1 + rng.uniform(0.0, 0.3)) ** (np.arange(n) / (24 * 365.25))  # up to +30 % a year
        if profile in ("diurnal", "heavy_tailed"):
            trough, top = rng.uniform(0.3, 0.6), rng.uniform(13.0, 17.0)
            cycle = trough + (1 - trough) * (1 + np.cos(2 * np.pi * (hod - top) / 24)) / 2
            shape = trend * cycle * np.where(self.weekend, rng.uniform(0.6, 0.9), 1.0)
            if profile == "diurnal":
                return shape * np.exp(self._ar1(rng.uniform(0.03, 0.10))), None, None
            sigma = rng.uniform(0.3, 0.6)
            t = np.clip(rng.standard_t(rng.uniform(3.0, 4.0), n), -4, 6)  # mean-one, with a long right tail
            return shape * np.exp(sigma * t - sigma**2 / 2), None, None
        if profile == "flat":
            return trend * np.exp(self._ar1(rng.uniform(0.01, 0.02))), None, None
        if profile == "business_hours":
            active = ~self.weekend & (hod >= 8) & (hod < 19)
            idle = rng.uniform(0.05, 0.15)
            jitter = np.exp(0.15 * np.clip(rng.standard_t(3, n), -4, 6))  # a big build, a load test
        elif profile == "nightly_batch":
            rel = np.arange(n) - int(rng.choice([22, 23, 0, 1, 2, 3]))  # hours since the first night's start
            night = np.maximum(rel, 0) // 24
            runs = np.clip(np.round(2 + rng.pareto(2.0, n // 24 + 1)), 2, 5)  # mostly 2–3 h, now and then 5
            active = (rel >= 0) & (rel % 24 < runs[night])
            idle = rng.uniform(0.03, 0.10)
            jitter = rng.lognormal(0.0, 0.15, len(runs))[night] * rng.lognormal(0.0, 0.05, n)
        else:  # intermittent: runs starting at random, 2–5 a week
            k = rng.poisson(rng.uniform(2, 5) * n / 168)
            starts, lengths = rng.integers(0, n, k), rng.integers(3, 21, k)
            depth = np.zeros(n + 21)
            np.add.at(depth, starts, 1)
            np.add.at(depth, starts + lengths, -1)
            active = np.cumsum(depth)[:n] > 0
            idle = rng.uniform(0.03, 0.08)
            jitter = np.exp(self._ar1(0.1))
        peak = trend * jitter
        return np.where(active, peak, idle * trend * rng.lognormal(0.0, 0.1, n)), peak, active

    def add(self, provider: str, account_id: str, name: str, env: str, team: str | None, service: str,
            profile: str, tier: str) -> _Series:
        level = float(np.exp(self.rng.uniform(*np.log(TIERS[tier]))))
        normal, peak, active = self._process(profile, level)
        s = _Series(provider, account_id, name, env, team, service, profile, normal, peak, active,
                    np.zeros(self.n), np.zeros(self.n, dtype=bool))
        self.series.append(s)
        return s

    # --- labels -----------------------------------------------------------------------------

    def label(self, kind: str, s: _Series | None, lo: int, hi: int, impact: float, description: str,
              benign: bool = False, provider: str | None = None) -> None:
        """Label hours ``lo``..``hi`` (inclusive) and keep them, QUIET_H either side, to this event."""
        if s is not None:
            s.events.append((lo, hi))
        self.labels.append({
            "event_id": len(self.labels) + 1, "kind": kind, "benign": benign,
            "start": self.hours[lo], "end": self.hours[hi],
            "provider": s.provider if s else provider, "sub_account_id": s.account_id if s else None,
            "service_name": s.service if s else None, "series_key": s.key if s else None,
            "team": (s.team or "untagged") if s else None, "expected_impact_usd": round(float(impact), 2),
            "baseline_usd_per_day": round(24 * float(s.normal[lo:hi + 1].mean()), 2) if s else 0.0,
            "description": description,
        })

    # --- events: each returns whether it found a series and hours for itself ------------------

    def _place(self, length: int, fits: Callable[[_Series, int, int], bool]) -> tuple[_Series, int] | None:
        """A series free for ``length`` hours from a random hour after the warm-up, that ``fits``."""
        last = self.n - length - 24  # ends a day before the span does: its recovery is in the bill
        for _ in range(200 if last > WARM_UP_H else 0):
            lo = int(self.rng.integers(WARM_UP_H, last))
            # The series with fewest anomalies first: else the largest ones would take most kinds.
            for i in sorted(self.rng.permutation(len(self.series)), key=lambda i: self.series[i].anomalies):
                s = self.series[i]
                if s.free(lo, lo + length - 1) and fits(s, lo, lo + length - 1):
                    return s, lo
        return None

    def _event(self, kind: str, length: int, shape: Callable[[_Series, int, int], np.ndarray | None], what: str,
               benign: bool = False) -> bool:
        """``kind`` over ``length`` hours on a series where ``shape(s, lo, hi)`` (the excess per hour;
        None where the kind does not apply) is defined and, for an anomaly, totals within IMPACT_USD."""
        def fits(s: _Series, lo: int, hi: int) -> bool:
            excess = shape(s, lo, hi)
            return excess is not None and (benign or IMPACT_USD[0] <= abs(excess.sum()) <= IMPACT_USD[1])

        placed = self._place(length, fits)
        if placed is None:
            return False
        s, lo = placed
        excess = shape(s, lo, lo + length - 1)
        s.anomalies += not benign
        if kind == "lost_export":
            s.missing[lo:lo + length] = True
        else:
            s.excess[lo:lo + length] += excess
        on = np.flatnonzero(excess)  # left running costs extra only in idle hours: the label spans those
        self.label(kind, s, lo + on[0], lo + on[-1], excess.sum(), f"{what} on {s.service} in {s.account_name} "
                   f"({s.profile})", benign=benign)
        return True

    def retry_loop(self) -> bool:
        times = self.rng.uniform(4, 10)
        return self._event("retry_loop", int(self.rng.integers(3, 9)),
                           lambda s, lo, hi: (times - 1) * s.normal[lo:hi + 1]
                           if s.profile in ("diurnal", "heavy_tailed") else None,
                           f"an API key in a retry loop at {times:.1f}x")

    def left_running(self) -> bool:
        def shape(s: _Series, lo: int, hi: int) -> np.ndarray | None:
            if s.profile not in ON_OFF:
                return None
            return np.where(s.active[lo:hi + 1], 0.0, np.maximum(s.peak[lo:hi + 1] - s.normal[lo:hi + 1], 0.0))

        return self._event("left_running", int(self.rng.integers(24, 73)), shape,
                           "left at its busy level through its idle hours")

    def cryptominer(self) -> bool:
        length, times = int(self.rng.integers(24, 73)), self.rng.uniform(3, 6)
        wobble = self.rng.normal(1.0, 0.02, length)  # pinned CPUs: flat around the clock

        def shape(s: _Series, lo: int, hi: int) -> np.ndarray | None:
            mean = s.normal[lo - 168:lo].mean()  # its last week
            if not (s.compute and s.profile in ("diurnal", "flat") and mean < 3.0):
                return None
            return np.maximum(times * mean * wobble - s.normal[lo:hi + 1], 0.0)

        return self._event("cryptominer", length, shape, f"a cryptominer at {times:.1f}x the mean")

    def level_shift(self) -> bool:
        rise = self.rng.uniform(0.5, 1.0)
        return self._event("level_shift", int(self.rng.integers(48, 121)),
                           lambda s, lo, hi: rise * s.normal[lo:hi + 1]
                           if s.profile in (*STEADY, "business_hours") else None, f"+{rise:.0%} level shift")

    def outage_drop(self) -> bool:
        keep = self.rng.uniform(0.05, 0.15)
        return self._event("outage_drop", int(self.rng.integers(6, 25)),
                           lambda s, lo, hi: -(1 - keep) * s.normal[lo:hi + 1] if s.profile in STEADY else None,
                           f"an outage, down to {keep:.0%}")

    def lost_export(self) -> bool:
        return self._event("lost_export", int(self.rng.integers(12, 49)),
                           lambda s, lo, hi: -s.normal[lo:hi + 1] if s.profile in STEADY else None,
                           "no line items while the rest of the bill arrives")

    def launch_peak(self) -> bool:
        rise = self.rng.uniform(0.3, 0.5)
        return self._event("launch_peak", int(self.rng.integers(4, 9)),
                           lambda s, lo, hi: rise * s.normal[lo:hi + 1]
                           if s.profile == "diurnal" and 12 <= self.hod[lo] <= 16 else None,
                           f"a product launch, +{rise:.0%}", benign=True)

    def monthly_job(self, s: _Series) -> None:
        """A 2–3-hour job on every 1st from a fixed hour: habit, so part of ``normal``."""
        hour, size = int(self.rng.integers(1, 6)), self.rng.uniform(2.0, 4.0) * float(s.normal.mean())
        for first in self.firsts:
            lo = first + hour
            hi = min(lo + int(self.rng.integers(2, 4)), self.n) - 1
            if lo >= WARM_UP_H:
                self.label("monthly_job", s, lo, hi, size * (hi - lo + 1), "monthly job on the 1st", benign=True)
            else:
                s.events.append((lo, hi))
            s.normal[lo:hi + 1] += size

    def scrape_gaps(self, s: _Series) -> None:
        """One to three gaps of 2–4 hours anywhere in the span, clear of the series' other events."""
        for _ in range(int(self.rng.integers(1, 4))):
            for _ in range(50):
                length = int(self.rng.integers(2, 5))
                lo = int(self.rng.integers(24, self.n - 24 - length))
                if s.free(lo, lo + length - 1):
                    s.missing[lo:lo + length] = True
                    self.label("scrape_gap", s, lo, lo + length - 1, -s.normal[lo:lo + length].sum(),
                               f"{length} hours of {s.service} missing from the export", benign=True)
                    break

    def missed_scrapes(self, s: _Series) -> None:
        """0.3–0.5 % of hours missing at random, single hours only (a run of two would be a gap,
        and gaps are labelled), none in or next to an event (its impact stays exact)."""
        missed = self.rng.random(self.n) < self.rng.uniform(0.003, 0.005)
        missed &= ~np.r_[False, missed[:-1]]
        for lo, hi in s.events:
            missed[max(lo - 1, 0):hi + 2] = False
        s.missing |= missed


def _line_items(bill: _Bill) -> pd.DataFrame:
    """Each series' hourly cost split over its resources, one Usage line item per resource and hour."""
    return usage_line_items(bill.series, bill.rng, _timestamps(bill.hours, pd.Timedelta(hours=1)),
                            lambda p, s: CATALOGUE[p][s], BILLING, REGION, SUB_ACCOUNT_TYPE.get)


def _purchases(bill: _Bill) -> pd.DataFrame:
    """A commitment fee per provider on every 1st, in its first hour, labelled benign."""
    rows = []
    for h in bill.firsts:
        day = bill.hours[h].date()
        for provider, (billing_id, billing_name) in BILLING.items():
            fee = round(1500.0 * (1.1 ** (h / (24 * 365.25))), 2)
            account_id, account_name = next((a[1], a[2]) for a in ACCOUNTS if a[0] == provider)
            period_start, period_end = billing_period(day)
            rows.append({
                "BillingAccountId": billing_id, "BillingAccountName": billing_name, "SubAccountId": account_id,
                "SubAccountName": account_name, "ProviderName": provider, "PublisherName": provider,
                "InvoiceIssuerName": provider, "BillingPeriodStart": period_start, "BillingPeriodEnd": period_end,
                "ChargePeriodStart": pd.Timestamp(day, tz="UTC"), "ChargePeriodEnd": pd.Timestamp(period_end),
                "BilledCost": fee, "EffectiveCost": fee, "ListCost": fee, "ContractedCost": fee, "BillingCurrency": "USD",
                "ServiceName": "Savings Plans for Compute usage" if provider == "AWS" else "Azure Reservations",
                "ServiceCategory": "Compute", "ChargeCategory": "Purchase", "ChargeDescription": "Monthly commitment fee",
                "ChargeFrequency": "Recurring", "PricingCategory": "Committed", "Tags": "{}",
            })
            bill.label("purchase", None, h, h, fee, "monthly commitment fee", benign=True, provider=provider)
    return pd.DataFrame(rows)


def generate(start: date, end: date, seed: int = 13) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(line items, labels) for the charge hours in ``[start, end)``; the same for the same seed."""
    rng = np.random.default_rng(seed)
    bill = _Bill(pd.date_range(start, end, freq="h", inclusive="left"), rng)
    for provider, account_id, name, env, team, series in ACCOUNTS:
        for service, profile, tier in series:
            bill.add(provider, account_id, name, env, team, service, profile, tier)
    for i in rng.choice([i for i, s in enumerate(bill.series) if s.profile in ("flat", "diurnal")], 2, replace=False):
        bill.monthly_job(bill.series[i])
    # Kinds in turn, one event each round, so that no kind takes the best places.
    made = dict.fromkeys(QUOTA, 0)
    for _ in range(3 * max(QUOTA.values())):
        for kind, quota in QUOTA.items():
            if made[kind] < quota and getattr(bill, kind)():
                made[kind] += 1
    for _ in range(LAUNCH_PEAKS):
        bill.launch_peak()
    for s in bill.series:
        bill.scrape_gaps(s)
        bill.missed_scrapes(s)
    items = pd.concat([_line_items(bill), _purchases(bill)], ignore_index=True)
    return in_order(_focus(items), bill.labels)


if __name__ == "__main__":
    run(__doc__, generate, seed=13, start=date(2025, 1, 1), end=date(2025, 6, 1))
