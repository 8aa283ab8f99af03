"""Stage 4: the anomaly report, the alerts and the daily digest; the sensor that launches them.

One alert per incident: the `alert_ledger` table records what every incident's alert announced,
and both assets work only on incidents no alert has announced yet. Dedupe lives in data, not in
run metadata: a single-run backfill copies one run's metadata onto every partition. Messages go
out through the `alert_outbox` table (see `alerting.delivery`), so none is lost or sent twice. A
sent alert whose incident grows, escalates, resolves or is re-scored is edited in place and the
change posted in its thread (see `alerting.ledger`).
"""

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb as duckdb_module
import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    sensor,
)
from dagster_duckdb import DuckDBResource
from pydantic import Field
from slack_sdk.webhook import WebhookClient

from finops_pipeline.alerting.delivery import (
    FileTransport,
    SlackTransport,
    WebhookTransport,
    atomic_write,
    deliver,
    due,
    enqueue,
    message_id,
)
from finops_pipeline.alerting.digest import digest_figures, digest_message
from finops_pipeline.alerting.incident import Incident
from finops_pipeline.alerting.ledger import pending_incidents, pending_revisions, record_revision, record_sent
from finops_pipeline.alerting.llm import llm_pricing
from finops_pipeline.alerting.messages import markdown_message, revision_note, slack_message, thread_reply
from finops_pipeline.alerting.report import build_report
from finops_pipeline.charts import cost_band_chart
from finops_pipeline.defs.detect import COSTS_TABLE, PERIOD_COLUMN, as_periods
from finops_pipeline.detection.series import LEVEL_COLUMNS
from finops_pipeline.partitions import GRAIN
from finops_pipeline.resources import FinopsSlackResource, LLMResource, OutboxResource
from finops_pipeline.storage import connect, ensure_table, replace_window, transaction, utc_bounds

ANOMALIES = AssetKey("anomalies")


class AlertSettings(Config):
    min_severity: str = "warning"  # info anomalies stay in the table and the UI without paging anyone


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
    """The report on the incidents not alerted yet: a summary of the run and, per incident, ranked
    root-cause hypotheses, immediate actions, prevention and estimated savings, written by the
    configured LLM (any OpenAI-compatible server) in a JSON schema and kept only when every figure
    in it comes from the data; by the deterministic template otherwise (no LLM, a failed request,
    a reply that does not hold up), which the report then says. Only incidents the statistics
    flagged reach the LLM. Stored as markdown in `reports/` and, a row per section with its model,
    tokens, cost and latency, in `anomaly_reports`."""
    with connect(duckdb) as con:
        facts = pending_incidents(con, config.min_severity)
        histories = {f.incident_id: _history_records(series_history(con, f)) for f in facts}
    if not facts:
        return MaterializeResult(metadata={"incidents": 0, "report": "nothing new to report"})
    client = llm.get_client() if llm.configured else None
    report = build_report(facts, histories, client, llm.model, llm_pricing(llm.model, llm.pricing))
    ids = sorted(f.incident_id for f in facts)
    report_id = hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
    created = datetime.now(timezone.utc)
    path = outbox.path("reports") / f"report_{created:%Y%m%dT%H%M%S}_{report_id}.md"
    atomic_write(path, report.markdown)
    rows = pd.DataFrame([{
        "row_id": f"{report_id}:{a.incident_id or 'run'}", "report_id": report_id,
        "kind": "incident" if a.incident_id else "run", "incident_id": a.incident_id, "created_at": created,
        "anomaly_ids": json.dumps(ids if a.incident_id is None else [a.incident_id]), "model": a.model,
        "used_fallback": a.used_fallback, "fallback_reason": a.fallback_reason, "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens, "cost_usd": a.cost_usd, "latency_s": a.latency_s, "requests": a.requests,
        "summary": a.summary,
        "analysis": json.dumps(a.data) if a.data else None,
        "markdown": a.markdown if a.incident_id else report.markdown,
    } for a in report.analyses])
    with connect(duckdb) as con:
        replace_window(con, "anomaly_reports", rows, "report_id = ?", [report_id])
    if report.used_fallback:
        context.log.warning(f"Template used for {report.fallbacks} of {len(report.analyses)} section(s): {report.fallback_reason}")
    return MaterializeResult(
        metadata={
            "incidents": len(ids),
            "report_id": report_id,
            "model": report.model or "template",
            "used_fallback": report.used_fallback,
            "fallback_reason": report.fallback_reason or "",
            "llm_requests": report.requests,
            "prompt_tokens": report.prompt_tokens,
            "completion_tokens": report.completion_tokens,
            "llm_cost_usd": round(report.cost_usd, 6),
            "llm_latency_s": round(report.latency_s, 3),
            "path": MetadataValue.path(str(path)),
            "report": MetadataValue.md(report.markdown),
        }
    )


def _history_records(history: pd.DataFrame) -> list[dict]:
    """A series' recent periods as the report's analysis reads them."""
    return [{"period": GRAIN.label(r.period), "actual_usd": round(float(r.cost), 2),
             "expected_usd": None if pd.isna(r.expected_cost) else round(float(r.expected_cost), 2),
             "lower_usd": None if pd.isna(r.lower_bound) else round(float(r.lower_bound), 2),
             "upper_usd": None if pd.isna(r.upper_bound) else round(float(r.upper_bound), 2)}
            for r in history.itertuples(index=False)]


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
    """One alert per new incident, with its chart in the thread: to Slack through dagster-slack
    when SLACK_BOT_TOKEN is set (the channel routed by team), otherwise as JSON + markdown files in
    the outbox folder. Each message goes through the `alert_outbox` table: enqueued with the
    ledger's record in one transaction, then delivered, its Slack ts recorded, so no incident is
    alerted twice and nothing is lost when Slack is down or the process dies mid-send (the next
    sensor tick retries). A sent alert whose incident grows, escalates, resolves, is answered or
    is re-scored is edited in place, and what changed is posted in its thread."""
    destination = slack.destination
    routes = slack.routing
    with connect(duckdb) as con:
        adopt_legacy_alerts(con)
        summaries = _incident_summaries(con)
        queued, revised = [], []
        for fact in pending_incidents(con, config.min_severity):
            head = message_id(fact.incident_id, "alert")
            chart = _incident_chart(con, fact, outbox)
            report_id, analysis = summaries.get(fact.incident_id, (None, None))
            message = slack_message(fact, outbox.dagster_url, report_id, analysis=analysis)
            payload = {**message, "stem": f"{fact.start_period:%Y-%m-%d}_{fact.incident_id}",
                       "markdown": markdown_message(fact, outbox.dagster_url, None),
                       "record": {"status": "sent", "revision": 0, "anomaly": fact.to_record(), "slack_message": message}}
            channel = routes.channel_for(fact.team) if destination == "slack" else None
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
            message = slack_message(fact, outbox.dagster_url, None, note, revision.withdrawn,
                                    analysis=summaries.get(fact.incident_id, (None, None))[1])
            status = "withdrawn" if revision.withdrawn else "updated"
            head = revision.head_message_id
            with transaction(con):
                enqueue(con, message_id(head, "update", revision.revision), fact.incident_id, "update",
                        revision.destination, revision.channel,
                        {**message, "markdown": markdown_message(fact, outbox.dagster_url, None, note, revision.withdrawn),
                         "record": {"status": status, "revision": revision.revision, "anomaly": fact.to_record(), "slack_message": message}},
                        head_message_id=head)
                reply = thread_reply(fact, note, revision.withdrawn)
                enqueue(con, message_id(head, "reply", revision.revision), fact.incident_id, "reply", revision.destination,
                        revision.channel, {**reply, "markdown": reply["text"] + "\n", "revision": revision.revision},
                        head_message_id=head)
                record_revision(con, revision)
            revised.append(f"{revision.incident_id} ({status})")
        delivery = deliver(con, _transports(slack, outbox))
        ledger_rows, waiting = con.execute(
            "SELECT (SELECT count(*) FROM alert_ledger), (SELECT count(*) FROM alert_outbox WHERE status <> 'sent')").fetchone()
    for failed_id, error in delivery.failed.items():
        context.log.warning(f"Message {failed_id} not delivered ({error}): it stays in alert_outbox, retried on a later tick")
    context.log.info(f"Queued {len(queued)} alert(s) and {len(revised)} revision(s); delivered {len(delivery.sent)} message(s) "
                     f"via {destination}, recovered {len(delivery.recovered)}, {waiting} waiting")
    return MaterializeResult(
        metadata={
            "alerts_queued": len(queued),
            "alerts_revised": MetadataValue.json(revised),
            "messages_delivered": len(delivery.sent),
            "messages_recovered": len(delivery.recovered),
            "messages_pending": int(waiting),
            "delivery_errors": MetadataValue.json(sorted(set(delivery.failed.values()))),
            "destination": destination,
            "dagster/row_count": int(ledger_rows),
        }
    )


def _transports(slack: FinopsSlackResource, outbox: OutboxResource) -> dict:
    transports = {"outbox": FileTransport(outbox.path("outbox"))}
    if slack.enabled:
        transports["slack"] = SlackTransport(slack.get_client())
    if slack.webhook_url:
        transports["webhook"] = WebhookTransport(WebhookClient(slack.webhook_url))
    return transports


def adopt_legacy_alerts(con) -> None:
    """Alerts sent before the outbox existed get a `sent` head row, so their revisions thread."""
    for table in ("alert_ledger", "alert_outbox"):
        ensure_table(con, table)
    legacy = con.execute("SELECT anomaly_id, destination, channel, message_ref FROM alert_ledger "
                         "WHERE head_message_id IS NULL AND message_ref IS NOT NULL").fetchall()
    for incident_id, destination, channel, ref in legacy:
        head = message_id(incident_id, "alert", "legacy")
        with transaction(con):
            enqueue(con, head, incident_id, "alert", "outbox" if destination != "slack" else "slack", channel, {})
            con.execute("UPDATE alert_outbox SET status = 'sent', channel_id = ?, message_ref = ? WHERE message_id = ?",
                        [channel, ref, head])
            con.execute("UPDATE alert_ledger SET head_message_id = ? WHERE anomaly_id = ?", [head, incident_id])


def _incident_summaries(con) -> dict[str, tuple[str, str | None]]:
    """Each incident's latest report and its summary: {incident_id: (report_id, summary)}."""
    ensure_table(con, "anomaly_reports")
    rows = con.execute(
        """SELECT incident_id, report_id, summary FROM anomaly_reports WHERE kind = 'incident'
           QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY created_at DESC) = 1""").fetchall()
    return {incident_id: (report_id, summary) for incident_id, report_id, summary in rows}


def series_history(con, fact: Incident, periods: int = 56) -> pd.DataFrame:
    """The incident's series over the ``periods`` up to its latest: cost, and the forecast band
    each period was scored against (``period, cost, expected_cost, lower_bound, upper_bound``)."""
    columns = {"provider": fact.provider, "sub_account_id": fact.sub_account_id, "service_name": fact.service,
               "team": fact.team}
    filters = [f"{c} = ?" for c in LEVEL_COLUMNS[fact.series_level]]
    end = GRAIN.period(fact.latest_period) + GRAIN.step
    first = end - periods * GRAIN.step
    costs = as_periods(con.execute(
        f"""SELECT {PERIOD_COLUMN} AS period, sum(effective_cost) AS cost FROM {COSTS_TABLE}
            WHERE charge_category = 'Usage' AND {PERIOD_COLUMN} >= ? AND {PERIOD_COLUMN} < ? {''.join(' AND ' + f for f in filters)}
            GROUP BY 1""", [first, end, *(columns[c] for c in LEVEL_COLUMNS[fact.series_level])]).df(), "period")
    bands = as_periods(con.execute(
        """SELECT target_period AS period, expected_cost, lower_bound, upper_bound FROM cost_forecasts
           WHERE horizon = 0 AND granularity = ? AND series_key = ? AND target_period >= ?::TIMESTAMPTZ
             AND target_period < ?::TIMESTAMPTZ""", [GRAIN.name, fact.series_key, *utc_bounds(first, end)]).df(), "period")
    history = pd.DataFrame({"period": GRAIN.periods(first, end)})
    history = history.merge(costs, on="period", how="left").merge(bands, on="period", how="left")
    return history.assign(cost=history["cost"].fillna(0.0))


def _incident_chart(con, fact: Incident, outbox: OutboxResource) -> Path:
    """The incident's series against its band, its anomalous periods marked, as a PNG file."""
    history = series_history(con, fact)
    marks = as_periods(con.execute(
        "SELECT period_start AS period, actual_cost AS cost FROM anomalies WHERE incident_id = ?",
        [fact.incident_id]).df(), "period")
    png = cost_band_chart([(f"{fact.series_description}: {fact.severity} {fact.direction} from {fact.start_label}",
                            history, marks)], unit="hour" if GRAIN.name == "hourly" else "day")
    path = outbox.path("charts") / f"incident_{fact.incident_id}.png"
    atomic_write(path, png)
    return path


alert_job = define_asset_job(
    "anomaly_alert_job",
    selection=AssetSelection.assets(AssetKey("incidents"), anomaly_report, anomaly_alerts),
    description="Roll anomalies up into incidents, then report and alert on those not alerted yet, revise the alerts "
    "whose incident changed, and deliver what the outbox holds.",
)

ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]


@sensor(
    job=alert_job,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches the alert job once for every run that materialized `anomalies`: new rows "
    "raise alerts, and a run without any can still resolve, grow or withdraw an incident. Between "
    "those, it re-runs delivery while the outbox holds messages that are due (Slack was down or "
    "rate-limited, or a run died mid-send) and no other run is going.",
)
def anomalies_sensor(context: SensorEvaluationContext, duckdb: DuckDBResource) -> SensorResult:
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
    if not requests and _outbox_due(context, duckdb.database):
        requests.append(RunRequest(asset_selection=[anomaly_alerts.key], tags={"finops/trigger": "outbox-retry"}))
    return SensorResult(run_requests=requests, cursor=str(cursor) if cursor is not None else None)


def _outbox_due(context: SensorEvaluationContext, database: str) -> bool:
    """Messages due for delivery, and no run queued or running: an alert run would send them, and
    a pipeline run holds the DuckDB file (its anomalies then launch an alert run anyway)."""
    if context.instance.get_runs(RunsFilter(statuses=ACTIVE), limit=1):
        return False
    if not Path(database).exists():
        return False
    try:
        with duckdb_module.connect(database, read_only=True) as con:
            if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'alert_outbox'").fetchone()[0]:
                return False
            return due(con) > 0
    except duckdb_module.Error as exc:  # a pipeline run holds the file: look again next tick
        context.log.info(f"Outbox not checked this tick: {type(exc).__name__}")
        return False


class DigestConfig(Config):
    day: str = Field(default="", description="The day to summarise (YYYY-MM-DD, UTC); empty: yesterday.")


@asset(
    group_name="alerting",
    kinds={"slack", "duckdb"},
    owners=["team:finops"],
    deps=[AssetKey("incidents")],
    pool="duckdb",
)
def cost_digest(context: AssetExecutionContext, config: DigestConfig, duckdb: DuckDBResource, slack: FinopsSlackResource,
                outbox: OutboxResource) -> MaterializeResult:
    """The daily digest, to the default channel: a day's anomalies by severity, the incidents still
    open, the largest ones, and the day's and month's usage spend against forecast. Delivered
    through `alert_outbox` like the alerts, once per day however often it runs."""
    day = date.fromisoformat(config.day) if config.day else datetime.now(timezone.utc).date() - timedelta(days=1)
    destination = slack.destination
    with connect(duckdb) as con:
        figures = digest_figures(con, day, GRAIN.name)
        message = digest_message(figures, outbox.dagster_url)
        payload = {**message, "stem": f"digest_{day.isoformat()}",
                   "record": {"status": "sent", "digest": figures, "slack_message": {k: message[k] for k in ("text", "blocks")}}}
        with transaction(con):
            queued = enqueue(con, message_id("digest", day.isoformat()), None, "digest", destination, slack.channel, payload)
        delivery = deliver(con, _transports(slack, outbox))
    context.log.info(f"Digest for {day}: {'queued' if queued else 'already queued'}; delivered {len(delivery.sent)} message(s)")
    return MaterializeResult(metadata={
        "day": day.isoformat(),
        "anomalies_by_severity": MetadataValue.json(figures["anomalies_by_severity"]),
        "open_incidents_by_severity": MetadataValue.json(figures["open_incidents_by_severity"]),
        "digest": MetadataValue.md(message["markdown"]),
        "destination": destination,
    })


digest_job = define_asset_job("cost_digest_job", selection=AssetSelection.assets(cost_digest),
                              description="Post the daily cost digest (yesterday, by default).")

digest_schedule = ScheduleDefinition(
    name="daily_digest_schedule",
    job=digest_job,
    cron_schedule="0 8 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="The daily digest at 08:00 UTC, after the 06:00 pipeline run has scored yesterday.",
)
