"""The alert ledger: what was sent for each anomaly, so nothing is sent twice and a sent alert can
be revised in place when its day is re-scored (a provider restated the bill).

Each entry keeps the figures it announced. After a re-run, an anomaly whose
figures moved is *updated* (the same Slack message, edited), and one that is gone is *withdrawn*.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from finops_pipeline.alerting.report import anomaly_facts
from finops_pipeline.storage import ensure_table

# The figures an alert announces; a change in any of them (to the cent) makes a sent alert stale.
ANNOUNCED = ("severity", "direction", "actual_usd", "expected_usd", "band_usd", "impact_usd", "top_contributors")


def fingerprint(fact: dict) -> str:
    """The announced figures, to the cent: equal fingerprints, same alert."""

    def cents(value):
        if isinstance(value, float):
            return round(value, 2)
        if isinstance(value, list):
            return [cents(v) for v in value]
        if isinstance(value, dict):
            return {k: cents(v) for k, v in value.items()}
        return value

    announced = json.dumps({k: cents(fact[k]) for k in ANNOUNCED}, sort_keys=True, default=str)
    return hashlib.sha256(announced.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Revision:
    anomaly_id: str
    destination: str
    channel: str | None
    message_ref: str
    revision: int
    previous: dict  # the figures last announced
    current: dict | None  # None: the re-scored day no longer has this anomaly

    @property
    def withdrawn(self) -> bool:
        return self.current is None


def record_sent(con: duckdb.DuckDBPyConnection, fact: dict, report_id: str | None, destination: str,
                channel: str | None, message_ref: str) -> None:
    now = datetime.now(timezone.utc)
    con.execute(
        """INSERT INTO alert_ledger (anomaly_id, report_id, destination, channel, message_ref, sent_at,
                                     status, revision, announced, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'sent', 0, ?, ?)""",
        [fact["anomaly_id"], report_id, destination, channel, message_ref, now, json.dumps(fact, default=str), now],
    )


def pending_revisions(con: duckdb.DuckDBPyConnection) -> list[Revision]:
    """Sent alerts whose anomaly was re-scored to other figures, is gone, or is back after a
    withdrawal."""
    ensure_table(con, "alert_ledger")
    ensure_table(con, "anomalies")
    ledger = con.execute(
        """SELECT anomaly_id, destination, channel, message_ref, revision, announced, status
           FROM alert_ledger WHERE announced IS NOT NULL"""
    ).df()
    if ledger.empty:
        return []
    current = con.execute(
        "SELECT * FROM anomalies WHERE anomaly_id IN (SELECT unnest(?::VARCHAR[]))", [list(ledger.anomaly_id)]
    ).df()
    facts = {f["anomaly_id"]: f for f in anomaly_facts(current)}
    revisions = []
    for row in ledger.itertuples(index=False):
        fact, previous = facts.get(row.anomaly_id), json.loads(row.announced)
        withdrawn = row.status == "withdrawn"
        if (fact is None and withdrawn) or (fact is not None and not withdrawn and fingerprint(fact) == fingerprint(previous)):
            continue
        revisions.append(Revision(row.anomaly_id, row.destination, row.channel, row.message_ref,
                                  int(row.revision) + 1, previous, fact))
    return revisions


def record_revision(con: duckdb.DuckDBPyConnection, revision: Revision) -> None:
    announced = revision.previous if revision.withdrawn else revision.current
    con.execute(
        """UPDATE alert_ledger SET status = ?, revision = ?, announced = ?, updated_at = ? WHERE anomaly_id = ?""",
        ["withdrawn" if revision.withdrawn else "updated", revision.revision, json.dumps(announced, default=str),
         datetime.now(timezone.utc), revision.anomaly_id],
    )
