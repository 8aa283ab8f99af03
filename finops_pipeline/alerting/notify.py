"""The alert workflow: every new incident's alert and every stale alert's revision enqueued with
the ledger's record in one transaction, then whatever the outbox holds delivered.

One alert per incident: the `alert_ledger` table records what every incident's alert announced,
and only incidents no alert has announced get one. Dedupe lives in data, not in run metadata (a
single-run backfill copies one run's metadata onto every partition). Messages go out through the
`alert_outbox` table (see ``delivery``), so none is lost or sent twice. A sent alert whose
incident grows, escalates, resolves or is re-scored is edited in place and the change posted in
its thread (see ``ledger``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from finops_pipeline.alerting.delivery import (
    Delivery,
    FileTransport,
    SlackTransport,
    WebhookTransport,
    deliver,
    enqueue,
    message_id,
)
from finops_pipeline.alerting.history import incident_chart
from finops_pipeline.alerting.ledger import pending_incidents, pending_revisions, record_revision, record_sent
from finops_pipeline.alerting.messages import markdown_message, revision_note, slack_message, thread_reply
from finops_pipeline.alerting.routing import Routes
from finops_pipeline.grain import Grain
from finops_pipeline.warehouse import transaction

Transport = SlackTransport | WebhookTransport | FileTransport


@dataclass(frozen=True)
class Notified:
    queued: list[str]  # incident ids newly alerted
    revised: list[str]  # "<incident id> (updated|withdrawn)"
    delivery: Delivery
    ledger_rows: int
    waiting: int  # messages not sent yet


def notify(con: duckdb.DuckDBPyConnection, grain: Grain, min_severity: str, destination: str, routes: Routes,
           transports: dict[str, Transport], dagster_url: str, charts_dir: Path) -> Notified:
    """Alert the incidents at ``min_severity`` or above that no alert announced, revise the alerts
    whose incident changed, then deliver what the outbox holds."""
    adopt_legacy_alerts(con)
    summaries = incident_summaries(con)
    queued, revised = [], []
    for fact in pending_incidents(con, min_severity):
        head = message_id(fact.incident_id, "alert")
        chart = incident_chart(con, grain, fact, charts_dir)
        report_id, analysis = summaries.get(fact.incident_id, (None, None))
        message = slack_message(fact, dagster_url, report_id, analysis=analysis)
        payload = {**message, "stem": f"{fact.start_period:%Y-%m-%d}_{fact.incident_id}",
                   "markdown": markdown_message(fact, dagster_url, None),
                   "record": {"status": "sent", "revision": 0, "anomaly": fact.to_record(), "slack_message": message}}
        channel = routes.channel_for(fact.team, fact.signal) if destination == "slack" else None
        with transaction(con):
            enqueue(con, head, fact.incident_id, "alert", destination, channel, payload)
            enqueue(con, message_id(head, "chart"), fact.incident_id, "chart", destination, channel,
                    {"filename": f"finops-{fact.incident_id}.png", "title": f"Cost vs forecast: {fact.series_key}"},
                    head_message_id=head, chart_path=str(chart))
            record_sent(con, fact, None, destination, channel, None, head)
        queued.append(fact.incident_id)
    for revision in pending_revisions(con):
        fact = revision.previous if revision.withdrawn else revision.current
        note = revision_note(revision.previous, revision.current)
        message = slack_message(fact, dagster_url, None, note, revision.withdrawn,
                                analysis=summaries.get(fact.incident_id, (None, None))[1])
        status = "withdrawn" if revision.withdrawn else "updated"
        head = revision.head_message_id
        with transaction(con):
            enqueue(con, message_id(head, "update", revision.revision), fact.incident_id, "update",
                    revision.destination, revision.channel,
                    {**message, "markdown": markdown_message(fact, dagster_url, None, note, revision.withdrawn),
                     "record": {"status": status, "revision": revision.revision, "anomaly": fact.to_record(), "slack_message": message}},
                    head_message_id=head)
            reply = thread_reply(fact, note, revision.withdrawn)
            enqueue(con, message_id(head, "reply", revision.revision), fact.incident_id, "reply", revision.destination,
                    revision.channel, {**reply, "markdown": reply["text"] + "\n", "revision": revision.revision},
                    head_message_id=head)
            record_revision(con, revision)
        revised.append(f"{revision.incident_id} ({status})")
    delivery = deliver(con, transports)
    ledger_rows, waiting = con.execute(
        "SELECT (SELECT count(*) FROM alert_ledger), (SELECT count(*) FROM alert_outbox WHERE status <> 'sent')").fetchone()
    return Notified(queued, revised, delivery, int(ledger_rows), int(waiting))


def adopt_legacy_alerts(con: duckdb.DuckDBPyConnection) -> None:
    """Alerts sent before the outbox existed get a `sent` head row, so their revisions thread."""
    legacy = con.execute("SELECT incident_id, destination, channel, message_ref FROM alert_ledger "
                         "WHERE head_message_id IS NULL AND message_ref IS NOT NULL").fetchall()
    for incident_id, destination, channel, ref in legacy:
        head = message_id(incident_id, "alert", "legacy")
        with transaction(con):
            enqueue(con, head, incident_id, "alert", "outbox" if destination != "slack" else "slack", channel, {})
            con.execute("UPDATE alert_outbox SET status = 'sent', channel_id = ?, message_ref = ? WHERE message_id = ?",
                        [channel, ref, head])
            con.execute("UPDATE alert_ledger SET head_message_id = ? WHERE incident_id = ?", [head, incident_id])


def incident_summaries(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str | None]]:
    """Each incident's latest report and its summary: {incident_id: (report_id, summary)}."""
    rows = con.execute(
        """SELECT incident_id, report_id, summary FROM anomaly_reports WHERE kind = 'incident'
           QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY created_at DESC) = 1""").fetchall()
    return {incident_id: (report_id, summary) for incident_id, report_id, summary in rows}
