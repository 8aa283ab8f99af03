"""The incident an alert, a ledger entry and a report section are about: one frozen ``Incident``
per incident, built from its peak anomaly's row (``Incident.from_row``, ``incidents_from_rows``),
and stored as JSON (the ledger's ``announced`` column, the outbox's ``record``) through one
``to_record`` / ``from_record`` pair whose keys are the stored format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import pandas as pd

from finops_pipeline.grain import DAILY, GRAINS, HOURLY, Grain


class Band(NamedTuple):
    """The forecast band the peak period was scored against, in USD."""

    lower: float
    upper: float


@dataclass(frozen=True)
class Contributor:
    """One item that moved the most (a resource, a sub-account × service…), as detection found it."""

    dimension: str
    name: str
    actual: float
    expected: float
    delta: float

    def to_record(self) -> dict:
        return {"dimension": self.dimension, "name": self.name, "actual": self.actual, "expected": self.expected,
                "delta": self.delta}

    @classmethod
    def from_record(cls, record: dict) -> Contributor:
        return cls(record["dimension"], record["name"], record["actual"], record["expected"], record["delta"])


@dataclass(frozen=True)
class Incident:
    """An incident's figures, as its peak anomaly and its span give them: what an alert announces
    and a report may cite."""

    incident_id: str  # the id of its first anomaly (the ledger's key)
    series_key: str
    start_period: datetime  # its first and latest anomalous periods
    latest_period: datetime
    start_label: str  # the same as Grain.label gives them: 2025-05-12, or 2025-05-12 14:00 UTC
    latest_label: str
    periods: int
    total_excess_usd: float  # actual minus expected over all its periods, to the cent
    status: str  # open or resolved
    feedback: str | None  # a person's answer (expected, planned, not_an_issue), or None
    peak_anomaly_id: str  # the anomaly of its largest $ excess, whose figures follow
    peak_day: str  # its date, ISO
    peak_label: str  # its period: the day, or the hour
    partition: str  # the Dagster partition holding it
    severity: str  # the incident's highest
    direction: str  # spike or drop
    series_level: str
    provider: str | None  # None where the series has none (above the provider level), never NaN
    sub_account: str | None
    sub_account_id: str | None
    service: str | None
    team: str | None
    actual_usd: float
    expected_usd: float
    band: Band
    impact_usd: float
    deviation_pct: float
    top_contributors: tuple[Contributor, ...]
    detectors: str | None  # which layers flagged the peak
    granularity: str = "daily"  # its grain's name (not stored: a record's labels say it)
    signal: str = "cost"  # cost, or data_gap: the series' line items stopped arriving
    profile: str | None = None  # the series' calibrated profile at the peak (steady, bursty, ...)
    usual: Band | None = None  # its calibrated range at the peak: outside it, the period pages
    api_key: str | None = None  # the AI API key its series is (level api_key)
    findings: tuple[str, ...] = ()  # what a rule saw at the peak, in its own figures (the AI rules)

    @classmethod
    def from_row(cls, row) -> Incident:
        """From a row of the anomalies table (a namedtuple from ``itertuples``). A row that carries
        its incident's columns (``incident_id``, ``start_period``, ``latest_period``, ``periods``,
        ``total_excess_usd``, ``status``, ``feedback``; the peak anomaly of an incident, as
        ``ledger.incident_rows`` gives them) describes the incident; a bare anomaly is an
        incident of one period."""
        grain = GRAINS[row.granularity]
        start = _utc(getattr(row, "start_period", row.period_start))
        latest = _utc(getattr(row, "latest_period", row.period_start))
        feedback = getattr(row, "feedback", None)
        return cls(
            incident_id=getattr(row, "incident_id", None) or row.anomaly_id,
            series_key=row.series_key,
            start_period=start,
            latest_period=latest,
            start_label=grain.label(start),
            latest_label=grain.label(latest),
            periods=int(getattr(row, "periods", 1)),
            total_excess_usd=round(float(getattr(row, "total_excess_usd", row.impact_usd)), 2),
            status=getattr(row, "status", "open"),
            feedback=feedback if isinstance(feedback, str) else None,  # not NaN
            peak_anomaly_id=row.anomaly_id,
            peak_day=row.period_start.date().isoformat(),
            peak_label=grain.label(row.period_start),
            partition=grain.partition_key(row.period_start),
            severity=row.severity,
            direction=row.direction,
            series_level=row.series_level,
            provider=_text(row.provider),
            sub_account=_text(row.sub_account_name),
            sub_account_id=_text(row.sub_account_id),
            service=_text(row.service_name),
            team=_text(row.team),
            actual_usd=row.actual_cost,
            expected_usd=row.expected_cost,
            band=Band(row.lower_bound, row.upper_bound),
            impact_usd=row.impact_usd,
            deviation_pct=row.deviation_pct,
            top_contributors=tuple(Contributor.from_record(c) for c in json.loads(row.top_contributors or "[]")),
            detectors=getattr(row, "detectors", None),
            granularity=grain.name,
            signal=_text(getattr(row, "signal", None)) or "cost",
            profile=_text(getattr(row, "profile", None)),
            usual=_band(getattr(row, "alert_lower", None), getattr(row, "alert_upper", None)),
            api_key=_text(getattr(row, "api_key_id", None)),
            findings=tuple(json.loads(f)) if isinstance(f := getattr(row, "findings", None), str) else (),
        )

    def to_record(self) -> dict:
        """The stored form (the ledger's ``announced``, the outbox's ``record``), JSON-ready with
        ``json.dumps(..., default=str)``. Its keys are the stored format: do not rename them."""
        return {
            "incident_id": self.incident_id,
            "series_key": self.series_key,
            "start": self.start_label,
            "latest": self.latest_label,
            "span": [self.start_period.isoformat(), self.latest_period.isoformat()],
            "periods": self.periods,
            "total_excess_usd": self.total_excess_usd,
            "status": self.status,
            "feedback": self.feedback,
            "anomaly_id": self.peak_anomaly_id,
            "day": self.peak_day,
            "period": self.peak_label,
            "partition": self.partition,
            "severity": self.severity,
            "direction": self.direction,
            "series_level": self.series_level,
            "provider": self.provider,
            "sub_account": self.sub_account,
            "sub_account_id": self.sub_account_id,
            "service": self.service,
            "team": self.team,
            "actual_usd": self.actual_usd,
            "expected_usd": self.expected_usd,
            "band_usd": [self.band.lower, self.band.upper],
            "impact_usd": self.impact_usd,
            "deviation_pct": self.deviation_pct,
            "top_contributors": [c.to_record() for c in self.top_contributors],
            "detectors": self.detectors,
            "signal": self.signal,
            "profile": self.profile,
            "usual_usd": list(self.usual) if self.usual else None,
            # Only when there is one: the records of the other alerts stay as they were stored, so
            # their fingerprints do not change.
            **({"api_key": self.api_key} if self.api_key else {}),
            **({"findings": list(self.findings)} if self.findings else {}),
        }

    @classmethod
    def from_record(cls, record: dict) -> Incident:
        """What ``to_record`` stored (``json.loads`` of it). ``feedback``, ``detectors``, ``signal``,
        ``profile``, ``usual_usd`` and ``api_key`` are absent from records written before they existed. A record from before incidents (an
        anomaly's figures only) reads as an incident of one period on an unknown series, which
        overlaps no other."""
        if "span" not in record:
            record = {**_one_period(record), **record}
        return cls(
            incident_id=record["incident_id"],
            series_key=record["series_key"],
            start_period=_utc(record["span"][0]),
            latest_period=_utc(record["span"][1]),
            start_label=record["start"],
            latest_label=record["latest"],
            periods=record["periods"],
            total_excess_usd=record["total_excess_usd"],
            status=record["status"],
            feedback=record.get("feedback"),
            peak_anomaly_id=record["anomaly_id"],
            peak_day=record["day"],
            peak_label=record["period"],
            partition=record["partition"],
            severity=record["severity"],
            direction=record["direction"],
            series_level=record["series_level"],
            provider=_text(record["provider"]),
            sub_account=_text(record["sub_account"]),
            sub_account_id=_text(record["sub_account_id"]),
            service=_text(record["service"]),
            team=_text(record["team"]),
            actual_usd=record["actual_usd"],
            expected_usd=record["expected_usd"],
            band=Band(*record["band_usd"]),
            impact_usd=record["impact_usd"],
            deviation_pct=record["deviation_pct"],
            top_contributors=tuple(Contributor.from_record(c) for c in record["top_contributors"]),
            detectors=record.get("detectors"),
            granularity=(HOURLY if record["period"].endswith(" UTC") else DAILY).name,  # Grain.label of an hour
            signal=record.get("signal", "cost"),
            profile=record.get("profile"),
            usual=_band(*(record.get("usual_usd") or (None, None))),
            api_key=_text(record.get("api_key")),
            findings=tuple(record.get("findings") or ()),
        )

    @property
    def series_description(self) -> str:
        """The series in words, one wording per level. A name the bill did not give falls back to
        what is known (an account's id), never to "None" or "nan"."""
        provider = self.provider or "unnamed provider"
        account = self.sub_account or self.sub_account_id or "unnamed account"
        service = self.service or "unnamed service"
        match self.series_level:
            case "total":
                return "Total usage (all accounts)"
            case "provider":
                return f"All {provider} usage"
            case "sub_account":
                return f"Account {account} ({provider}, all services)"
            case "service":
                return f"{service} ({provider}, all accounts)"
            case "team":
                return f"Team {self.team or 'untagged'} (all accounts)"
            case "api_key":
                return f"API key {self.api_key or 'unnamed key'} in {account} ({provider})"
            case _:
                return f"{service} in {account} ({provider})"

    @property
    def is_data_gap(self) -> bool:
        return self.signal == "data_gap"

    @property
    def gap_headline(self) -> str:
        """A data gap in words: what stopped arriving, since when, and that the rest still does."""
        rest = "the other providers' bills are" if self.series_level == "provider" else \
            f"the rest of {self.provider or 'its provider'}'s bill is"
        return (f"no line items for {self.series_description} since {self.start_label} ({self.periods} "
                f"{'period' if self.periods == 1 else 'periods'}, ${-self.total_excess_usd:,.2f} expected in that time); "
                f"{rest} arriving")

    @property
    def grain(self) -> Grain:
        return GRAINS[self.granularity]

    def overlaps(self, other: Incident) -> bool:
        """Same series, and periods in common."""
        return (other.series_key == self.series_key and other.start_period <= self.latest_period
                and self.start_period <= other.latest_period)


def incidents_from_rows(anomalies: pd.DataFrame) -> list[Incident]:
    """``Incident.from_row`` of each row of ``anomalies``, most expensive first."""
    return [Incident.from_row(row) for row in
            anomalies.sort_values("impact_usd", key=abs, ascending=False).itertuples(index=False)]


def _band(lower, upper) -> Band | None:
    """A calibrated range, or None where the series had none (NaN from DuckDB)."""
    if lower is None or upper is None or pd.isna(lower) or pd.isna(upper):
        return None
    return Band(round(float(lower), 2), round(float(upper), 2))


def _text(value) -> str | None:
    """A name as stored: None for a missing one (DuckDB and pandas give NaN; JSON may hold NaN)."""
    if value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value.strip()):
        return None
    return str(value)


def _utc(value) -> pd.Timestamp:
    """A period as a Timestamp; a naive one is UTC, as everywhere in the pipeline."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts


def _one_period(anomaly: dict) -> dict:
    """The incident keys a record from before incidents lacks, as ``from_row`` fills them for a
    bare anomaly (daily: hours came later)."""
    return {"incident_id": anomaly["anomaly_id"], "series_key": "", "start": anomaly["day"], "latest": anomaly["day"],
            "span": [anomaly["day"], anomaly["day"]], "periods": 1,
            "total_excess_usd": round(float(anomaly["impact_usd"]), 2), "status": "open", "period": anomaly["day"],
            "partition": anomaly["day"]}
