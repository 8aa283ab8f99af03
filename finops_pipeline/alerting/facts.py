"""The figures an alert or a report may use: one dict per incident (``anomaly_facts``), money
formatting, and the figures table every report ends with."""

from __future__ import annotations

import json

import pandas as pd

from finops_pipeline.grain import GRAINS, Grain


def money(value: float, signed: bool = False) -> str:
    """$1,234.50; with ``signed``, +$1,234.50 / -$1,234.50 for changes."""
    sign = "-" if value < 0 else ("+" if signed else "")
    return f"{sign}${abs(value):,.2f}"


def anomaly_facts(anomalies: pd.DataFrame) -> list[dict]:
    """The figures the report and the alerts may use, most expensive first: one dict per row of
    ``anomalies``. A row that carries its incident's columns (``incident_id``, ``start_period``,
    ``latest_period``, ``periods``, ``total_excess_usd``, ``status``; the peak anomaly of an
    incident, as ``ledger.incident_rows`` gives them) describes the incident; a bare anomaly is an
    incident of one period."""
    facts = []
    for row in anomalies.sort_values("impact_usd", key=abs, ascending=False).itertuples(index=False):
        grain = GRAINS[row.granularity]
        start = getattr(row, "start_period", row.period_start)
        latest = getattr(row, "latest_period", row.period_start)
        facts.append(
            {
                "incident_id": getattr(row, "incident_id", None) or row.anomaly_id,
                "series_key": row.series_key,
                "start": grain.label(start),
                "latest": grain.label(latest),
                "span": [pd.Timestamp(start).isoformat(), pd.Timestamp(latest).isoformat()],
                "periods": int(getattr(row, "periods", 1)),
                "total_excess_usd": round(float(getattr(row, "total_excess_usd", row.impact_usd)), 2),
                "status": getattr(row, "status", "open"),
                "feedback": feedback if isinstance(feedback := getattr(row, "feedback", None), str) else None,  # not NaN
                "anomaly_id": row.anomaly_id,
                "day": row.period_start.date().isoformat(),
                "period": grain.label(row.period_start),  # the day, or the hour
                "partition": partition_key(row.period_start, grain),
                "severity": row.severity,
                "direction": row.direction,
                "series_level": row.series_level,
                "provider": row.provider,
                "sub_account": row.sub_account_name,
                "sub_account_id": row.sub_account_id,
                "service": row.service_name,
                "team": row.team,
                "actual_usd": row.actual_cost,
                "expected_usd": row.expected_cost,
                "band_usd": [row.lower_bound, row.upper_bound],
                "impact_usd": row.impact_usd,
                "deviation_pct": row.deviation_pct,
                "top_contributors": json.loads(row.top_contributors or "[]"),
                "detectors": getattr(row, "detectors", None),  # which layers flagged the peak
            }
        )
    return facts


def partition_key(period_start, grain: Grain) -> str:
    """The Dagster partition holding ``period_start``: 2025-05-12, or 2025-05-12-14:00 for an hour."""
    return f"{grain.period(period_start):%Y-%m-%d-%H:%M}" if grain.name == "hourly" else grain.label(period_start)


def describe_series(fact: dict) -> str:
    if fact["series_level"] == "total":
        return "Total usage (all accounts)"
    return f"{fact['service']} in {fact['sub_account']} ({fact['provider']})"


def figures_table(facts: list[dict]) -> str:
    lines = [
        "| Day | Severity | Series | Team | Actual | Expected | Band | Impact | Deviation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in facts:
        cells = [
            f["period"], f["severity"], describe_series(f), f["team"] or "-", money(f["actual_usd"]),
            money(f["expected_usd"]), f"{money(f['band_usd'][0])} – {money(f['band_usd'][1])}",
            money(f["impact_usd"], signed=True), f"{f['deviation_pct']:+.1f}%",
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
