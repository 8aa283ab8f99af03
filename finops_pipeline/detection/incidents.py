"""Incidents: the anomalous periods of one series that follow each other, as one event.

A level shift is one incident that grows day by day, not ten alerts. An incident is named by its
first anomaly (``incident_id`` is that anomaly's id), so the name never changes as it grows, and a
backfill and daily runs name it alike. It is open while its latest period is the series' latest
scored period, and resolved once a later period of the series was scored and found in its band.
"""

from __future__ import annotations

import pandas as pd

from finops_pipeline.grain import GRAINS
from finops_pipeline.detection.scoring import SEVERITIES, Thresholds, incident_severity
from finops_pipeline.detection.series import is_data_gap
from finops_pipeline.warehouse import register


def assign_incidents(anomalies: pd.DataFrame) -> pd.Series:
    """The incident of each anomaly (indexed like ``anomalies``): a new one when the series had no
    anomaly within its grain's ``incident_reach`` before (the period before, for days), or one in
    the other direction."""
    if anomalies.empty:
        return pd.Series(dtype="object")
    frame = anomalies[["anomaly_id", "series_key", "granularity", "direction", "period_start"]].copy()
    frame["reach"] = [GRAINS[g].step * GRAINS[g].incident_reach for g in frame["granularity"]]
    frame = frame.sort_values(["granularity", "series_key", "period_start"], kind="stable")
    same_series = frame["series_key"].eq(frame["series_key"].shift()) & frame["granularity"].eq(frame["granularity"].shift())
    follows = (frame["period_start"] - frame["period_start"].shift()).le(frame["reach"])
    same_way = frame["direction"].eq(frame["direction"].shift())
    starts = ~(same_series & follows & same_way)
    # Each anomaly takes the id of the anomaly that started its run.
    first = frame["anomaly_id"].where(starts).ffill()
    return first.reindex(anomalies.index)


def summarize(anomalies: pd.DataFrame, last_scored: pd.Series, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """One row per incident: its series, start, peak (the period with the largest $ excess),
    latest, number of periods, total excess, severity, status and signal: ``cost``, or
    ``data_gap`` when most periods of it are a series without line items (``rules.no_line_items``),
    which is a warning once ``data_gap_periods`` of them have passed. A cost incident's severity is its
    highest period's, or what its totals earn (``incident_severity``) when that is higher: a
    sustained change pages on the period its cost crosses the floor. ``anomalies`` carries
    ``incident_id`` (and ``explained_by``: an incident whose peak a finer anomaly explains is
    explained by that anomaly's incident); ``last_scored`` maps each series_key to the latest period it was scored."""
    columns = ["incident_id", "granularity", "series_level", "series_key", "provider", "sub_account_id",
               "sub_account_name", "service_name", "team", "api_key_id", "direction", "start_period", "peak_period",
               "latest_period", "periods", "total_excess_usd", "peak_anomaly_id", "severity", "status", "feedback",
               "explained_by", "signal"]
    if anomalies.empty:
        return pd.DataFrame(columns=columns)
    t = thresholds or Thresholds()
    frame = anomalies.assign(magnitude=anomalies["impact_usd"].abs(),
                             rank=anomalies["severity"].map(SEVERITIES.index))
    incident_of = dict(zip(frame["anomaly_id"], frame["incident_id"]))
    rows = []
    for incident_id, group in frame.sort_values("period_start").groupby("incident_id", sort=True):
        peak = group.loc[group["magnitude"].idxmax()]
        latest = group["period_start"].max()
        scored_after = last_scored.get(peak["series_key"])
        total = float(group["impact_usd"].sum())
        # A run of periods each of whose span cost within its calibrated range is the series' usual
        # (a training run of three days on a series that has them): its total earns nothing.
        # Unknown (no calibrated bounds yet: a new series) is not usual: NA must not pass as True.
        usual = "span_usual" in group and bool(group["span_usual"].eq(True).fillna(False).all())
        by_totals = "info" if usual else incident_severity(total, float(group["expected_cost"].sum()), len(group), t)
        # Mostly periods without line items (the span rule may see the gap's low days after it):
        # missing rows, not spending, paged by how long they last, whatever the $.
        gaps = sum(is_data_gap(d) for d in group["detectors"]) if "detectors" in group else 0
        gap = gaps > 0 and 2 * gaps >= len(group)
        if gap:
            severity = "warning" if gaps >= t.data_gap_periods else "info"
        else:
            severity = SEVERITIES[max(int(group["rank"].max()), SEVERITIES.index(by_totals))]
        rows.append({
            **{c: peak.get(c) for c in ("series_key", "series_level", "granularity", "provider", "sub_account_id",
                                        "sub_account_name", "service_name", "team", "api_key_id", "direction")},
            "incident_id": incident_id,
            "start_period": group["period_start"].min(),
            "peak_period": peak["period_start"],
            "latest_period": latest,
            "periods": len(group),
            "total_excess_usd": round(total, 2),
            "peak_anomaly_id": peak["anomaly_id"],
            "severity": severity,
            "signal": "data_gap" if gap else "cost",
            "status": "resolved" if scored_after is not None and scored_after > latest else "open",
            # A person's answer on it, which its anomalies carry as their status.
            "feedback": group["status"].dropna().iloc[-1] if "status" in group and group["status"].notna().any() else None,
            "explained_by": incident_of.get(peak.get("explained_by")),
        })
    return pd.DataFrame(rows, columns=columns)


def name_incidents(con) -> None:
    """Give every stored anomaly its incident. Runs in the transaction that wrote a window: a
    re-run of a past window can join or split the runs of anomalies after it, so all are named
    again."""
    frame = con.execute("SELECT anomaly_id, series_key, granularity, direction, period_start FROM anomalies").df()
    frame["incident_id"] = assign_incidents(frame)
    register(con, "_incident_ids", frame[["anomaly_id", "incident_id"]])
    con.execute(
        """UPDATE anomalies SET incident_id = i.incident_id FROM _incident_ids i
           WHERE anomalies.anomaly_id = i.anomaly_id AND anomalies.incident_id IS DISTINCT FROM i.incident_id"""
    )
    con.unregister("_incident_ids")
