"""Stage 4: the anomaly report and the alerts, launched by a sensor on new `anomalies` rows.

One alert per incident: the `alert_ledger` table records every alert sent, and both assets work
only on incidents no alert has announced yet. Dedupe lives in data, not in run metadata: a
single-run backfill copies one run's metadata onto every partition. A sent alert whose incident
grows, escalates, resolves or is re-scored is edited in place (see `alerting.ledger`).
"""

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    Config,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    sensor,
)
from dagster_duckdb import DuckDBResource

from finops_pipeline.alerting.ledger import pending_incidents, pending_revisions, record_revision, record_sent
from finops_pipeline.alerting.messages import markdown_message, revision_note, slack_message
from finops_pipeline.alerting.report import write_report
from finops_pipeline.resources import FinopsSlackResource, LLMResource, OutboxResource
from finops_pipeline.storage import connect, ensure_table

ANOMALIES = AssetKey("anomalies")


class AlertSettings(Config):
    min_severity: str = "warning"  # info anomalies stay in the table and the UI without paging anyone


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@asset(
    group_name="alerting",
    kinds={"openai", "duckdb"},
    owners=["team:finops"],
    deps=[AssetKey("incidents")],
    pool="duckdb",
    metadata={"dagster/table_name": "main.anomaly_reports"},
)
def anomaly_report(
    context: AssetExecutionContext, config: AlertSettings, duckdb: DuckDBResource, llm: LLMResource, outbox: OutboxResource
) -> MaterializeResult:
    """A report on the incidents not alerted yet: written by the configured LLM (any
    OpenAI-compatible server), or by the deterministic template when none is configured or it
    fails, which the report then says. Stored as markdown in `reports/` and in `anomaly_reports`."""
    with connect(duckdb) as con:
        facts = pending_incidents(con, config.min_severity)
    if not facts:
        return MaterializeResult(metadata={"incidents": 0, "report": "nothing new to report"})
    report = write_report(facts, llm.get_client() if llm.configured else None, llm.model)
    ids = sorted(f["incident_id"] for f in facts)
    report_id = hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
    created = datetime.now(timezone.utc)
    path = outbox.path("reports") / f"report_{created:%Y%m%dT%H%M%S}_{report_id}.md"
    _atomic_write(path, report.markdown)
    with connect(duckdb) as con:
        ensure_table(con, "anomaly_reports")
        con.execute("DELETE FROM anomaly_reports WHERE report_id = ?", [report_id])
        con.execute(
            "INSERT INTO anomaly_reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [report_id, created, json.dumps(ids), report.model, report.used_fallback, report.fallback_reason,
             report.prompt_tokens, report.completion_tokens, report.markdown],
        )
    if report.used_fallback:
        context.log.warning(f"Template report used: {report.fallback_reason}")
    return MaterializeResult(
        metadata={
            "incidents": len(ids),
            "report_id": report_id,
            "model": report.model or "template",
            "used_fallback": report.used_fallback,
            "prompt_tokens": report.prompt_tokens or 0,
            "completion_tokens": report.completion_tokens or 0,
            "path": MetadataValue.path(str(path)),
            "report": MetadataValue.md(report.markdown),
        }
    )


@asset(
    group_name="alerting",
    kinds={"slack", "duckdb"},
    owners=["team:finops"],
    deps=[anomaly_report],
    pool="duckdb",
    metadata={"dagster/table_name": "main.alert_ledger"},
)
def anomaly_alerts(
    context: AssetExecutionContext,
    config: AlertSettings,
    duckdb: DuckDBResource,
    slack: FinopsSlackResource,
    outbox: OutboxResource,
) -> MaterializeResult:
    """One alert per new incident: to Slack through dagster-slack when SLACK_BOT_TOKEN is set,
    otherwise as JSON + markdown files in the outbox. Each alert is recorded in `alert_ledger`
    right after it is sent, so no incident is alerted twice. A sent alert is edited in place,
    never sent again, when its incident grows, escalates or resolves, or when its periods are
    re-scored (a provider restated them); it is withdrawn when the incident is gone."""
    with connect(duckdb) as con:
        pending = pending_incidents(con, config.min_severity)
        ensure_table(con, "anomaly_reports")
        latest = con.execute("SELECT report_id FROM anomaly_reports ORDER BY created_at DESC LIMIT 1").fetchone()
        report_ref = latest[0] if latest else None
        client = slack.get_client() if slack.enabled else None
        sent = []
        for fact in pending:
            message = slack_message(fact, outbox.dagster_url, report_ref)
            if client is not None:
                response = client.chat_postMessage(channel=slack.channel, text=message["text"], blocks=message["blocks"])
                # The channel id Slack answers with, not the name: chat.update needs it.
                destination, channel, ref = "slack", str(response["channel"]), str(response["ts"])
            else:
                destination, channel, ref = "outbox", None, _write_outbox(outbox, fact, message, report_ref)
            record_sent(con, fact, report_ref, destination, channel, ref)
            sent.append(fact["incident_id"])
        revised = []
        for revision in pending_revisions(con):
            fact = revision.previous if revision.withdrawn else revision.current
            note = revision_note(revision.previous, revision.current)
            message = slack_message(fact, outbox.dagster_url, report_ref, note, revision.withdrawn)
            if revision.destination == "slack":
                if client is None:
                    context.log.warning(f"Alert {revision.incident_id} went to Slack, which is not configured now: not revised")
                    continue
                client.chat_update(channel=revision.channel, ts=revision.message_ref, text=message["text"],
                                   blocks=message["blocks"])
            else:
                _write_outbox(outbox, fact, message, report_ref, note, revision.withdrawn, revision.revision,
                              sent_to=Path(revision.message_ref))
            record_revision(con, revision)
            revised.append(f"{revision.incident_id} ({'withdrawn' if revision.withdrawn else 'updated'})")
        total = con.execute("SELECT count(*) FROM alert_ledger").fetchone()[0]
    context.log.info(f"Sent {len(sent)} alert(s) and revised {len(revised)} via {'Slack' if slack.enabled else 'the outbox'}")
    return MaterializeResult(
        metadata={
            "alerts_sent": len(sent),
            "alerts_revised": MetadataValue.json(revised),
            "destination": "slack" if slack.enabled else "outbox",
            "dagster/row_count": int(total),
        }
    )


def _write_outbox(outbox: OutboxResource, fact: dict, message: dict, report_ref: str | None, note: str | None = None,
                  withdrawn: bool = False, revision: int = 0, sent_to: Path | None = None) -> str:
    """The alert as JSON (with its Slack payload) and markdown; a revision replaces the files it
    was sent as (``sent_to``)."""
    stem = sent_to.with_suffix("") if sent_to else outbox.path("outbox") / f"{fact['span'][0][:10]}_{fact['incident_id']}"
    status = "withdrawn" if withdrawn else ("updated" if revision else "sent")
    payload = {"status": status, "revision": revision, "anomaly": fact, "slack_message": message}
    _atomic_write(stem.with_suffix(".json"), json.dumps(payload, indent=2, default=str))
    _atomic_write(stem.with_suffix(".md"), markdown_message(fact, outbox.dagster_url, report_ref, note, withdrawn))
    return str(stem.with_suffix(".json"))


alert_job = define_asset_job(
    "anomaly_alert_job",
    selection=AssetSelection.assets(AssetKey("incidents"), anomaly_report, anomaly_alerts),
    description="Roll anomalies up into incidents, then report and alert on those not alerted yet, and revise "
    "the alerts whose incident changed.",
)


@sensor(
    job=alert_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches the alert job once for every run that materialized `anomalies`: new rows "
    "raise alerts, and a run without any can still resolve, grow or withdraw an incident.",
)
def anomalies_sensor(context: SensorEvaluationContext) -> SensorResult:
    # A plain sensor walking every materialization after the cursor: asset_sensor would only see
    # the newest one, and two quick runs would lose an alert.
    cursor = int(context.cursor) if context.cursor else None
    by_run: dict[str, list] = {}
    while True:
        result = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=ANOMALIES, after_storage_id=cursor), limit=500, ascending=True
        )
        for record in result.records:
            cursor = record.storage_id
            # One backfill run emits an event per partition: one request per run is enough.
            key = record.run_id or f"runless-{record.storage_id}"
            by_run.setdefault(key, []).append(record)
        if not result.has_more:
            break
    requests = [
        RunRequest(run_key=f"anomalies-{max(r.storage_id for r in records)}", tags={"finops/source_run": key})
        for key, records in by_run.items()
    ]
    return SensorResult(run_requests=requests, cursor=str(cursor) if cursor is not None else None)
