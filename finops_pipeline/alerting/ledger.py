"""The alert ledger: one alert per incident, what it announced, and where, so nothing is sent twice
and a sent alert is revised in place when its incident grows, escalates, resolves, or is
re-scored (a provider restated the bill).

The ledger is keyed by ``incident_id`` (the id of the incident's first anomaly). A re-score can
change that first anomaly; an incident on the same series whose periods overlap what an alert
announced is the same incident, and takes the alert over.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from finops_pipeline.alerting.incident import Incident, incidents_from_rows
from finops_pipeline.detection.scoring import SEVERITIES

# The figures an alert announces (keys of ``Incident.to_record``); a change in any of them (to the
# cent) makes a sent alert stale.
ANNOUNCED = ("severity", "direction", "actual_usd", "expected_usd", "band_usd", "impact_usd", "top_contributors",
             "start", "latest", "periods", "total_excess_usd", "status", "feedback")


def fingerprint(incident: Incident) -> str:
    """The announced figures, to the cent: equal fingerprints, same alert."""

    def cents(value):
        if isinstance(value, float):
            return round(value, 2)
        if isinstance(value, list):
            return [cents(v) for v in value]
        if isinstance(value, dict):
            return {k: cents(v) for k, v in value.items()}
        return value

    record = incident.to_record()
    return json.dumps({k: cents(record[k]) for k in ANNOUNCED}, sort_keys=True, default=str)


@dataclass(frozen=True)
class Revision:
    incident_id: str  # as the ledger has it
    destination: str
    channel: str | None
    message_ref: str | None  # None until the alert's first message is delivered
    head_message_id: str | None  # its thread's head in alert_outbox
    revision: int
    previous: Incident  # as last announced
    current: Incident | None  # None: re-scored, the incident is gone

    @property
    def withdrawn(self) -> bool:
        return self.current is None


def incident_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each incident worth its own alert, as its peak anomaly's row plus the incident's columns
    (for ``incidents_from_rows``): not one a finer incident explains (the total, when one service moved)."""
    return con.execute(
        """SELECT a.* EXCLUDE (incident_id, severity, status), i.incident_id, i.severity, i.start_period,
                  i.latest_period, i.periods, i.total_excess_usd, i.status, i.feedback, i.signal
           FROM incidents i JOIN anomalies a ON a.anomaly_id = i.peak_anomaly_id
           WHERE i.explained_by IS NULL"""
    ).df()


def _sent(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    ledger = con.execute(
        "SELECT incident_id, destination, channel, message_ref, head_message_id, revision, announced, status FROM alert_ledger"
    ).df()
    ledger["announced"] = pd.Series([Incident.from_record(json.loads(a)) if a else None for a in ledger["announced"]],
                                    index=ledger.index, dtype="object")
    return ledger


def pending_incidents(con: duckdb.DuckDBPyConnection, min_severity: str) -> list[Incident]:
    """The incidents at or above ``min_severity`` that no alert has announced yet, and
    that nobody has answered (marked expected, planned or not an issue)."""
    if min_severity not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {SEVERITIES}, got {min_severity!r}")
    rows = incident_rows(con)
    rows = rows[rows["severity"].isin(SEVERITIES[SEVERITIES.index(min_severity):])]
    ledger = _sent(con)
    known = set(ledger["incident_id"])
    return [i for i in incidents_from_rows(rows) if not i.feedback
            and i.incident_id not in known and not any(a is not None and i.overlaps(a) for a in ledger["announced"])]


def pending_revisions(con: duckdb.DuckDBPyConnection) -> list[Revision]:
    """Sent alerts whose incident now reads differently: grown, escalated, resolved, re-scored,
    gone, or back after a withdrawal."""
    ledger = _sent(con)
    ledger = ledger[ledger["announced"].notna()]
    if ledger.empty:
        return []
    incidents = incidents_from_rows(incident_rows(con))
    by_id = {i.incident_id: i for i in incidents}
    claimed = set(ledger["incident_id"])
    revisions = []
    for row in ledger.itertuples(index=False):
        previous = row.announced
        if previous.feedback:
            continue  # answered, and the alert said so: left alone from then on
        current = by_id.get(row.incident_id)
        if current is None:  # its first anomaly was re-scored away: the overlapping incident takes over
            current = next((i for i in incidents if i.incident_id not in claimed and i.overlaps(previous)), None)
            if current is not None:
                claimed.add(current.incident_id)
        withdrawn = row.status == "withdrawn"
        if (current is None and withdrawn) or (current is not None and not withdrawn
                                               and fingerprint(current) == fingerprint(previous)):
            continue
        revisions.append(Revision(row.incident_id, row.destination, row.channel, row.message_ref, row.head_message_id,
                                  int(row.revision or 0) + 1, previous, current))
    return revisions


def record_sent(con: duckdb.DuckDBPyConnection, incident: Incident, report_id: str | None, destination: str,
                channel: str | None, message_ref: str | None, head_message_id: str | None = None) -> None:
    """The incident's alert is decided: what it announces, where, and (once delivered) its message."""
    now = datetime.now(timezone.utc)
    con.execute(
        """INSERT INTO alert_ledger (incident_id, report_id, destination, channel, message_ref, sent_at,
                                     status, revision, announced, updated_at, head_message_id)
           VALUES (?, ?, ?, ?, ?, ?, 'sent', 0, ?, ?, ?)""",
        [incident.incident_id, report_id, destination, channel, message_ref, now,
         json.dumps(incident.to_record(), default=str), now, head_message_id],
    )


def record_revision(con: duckdb.DuckDBPyConnection, revision: Revision) -> None:
    """The alert now announces the revision's figures (or is withdrawn). Call inside the caller's
    transaction, beside the outbox rows that carry the revision."""
    announced = revision.previous if revision.withdrawn else revision.current
    status = "withdrawn" if revision.withdrawn else "updated"
    # Delete and insert rather than update the key: the incident may have a new id. Where the
    # message is comes from the row itself: delivery may have filled it since the revision was read.
    kept = con.execute("SELECT report_id, sent_at, channel, message_ref, head_message_id FROM alert_ledger WHERE incident_id = ?",
                       [revision.incident_id]).fetchone()
    con.execute("DELETE FROM alert_ledger WHERE incident_id = ?", [revision.incident_id])
    con.execute(
        """INSERT INTO alert_ledger (incident_id, report_id, destination, channel, message_ref, sent_at,
                                     status, revision, announced, updated_at, head_message_id)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [announced.incident_id, kept[0], revision.destination, kept[2], kept[3], kept[1],
         status, revision.revision, json.dumps(announced.to_record(), default=str), datetime.now(timezone.utc), kept[4]],
    )
