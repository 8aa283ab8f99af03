"""Alerting: the anomaly report, the alerts and the daily digest."""

from datetime import date, datetime, timedelta, timezone

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from finops_pipeline.alerting.delivery import deliver, enqueue, message_id
from finops_pipeline.alerting.digest import digest_figures, digest_message
from finops_pipeline.alerting.llm import llm_pricing
from finops_pipeline.alerting.notify import notify
from finops_pipeline.alerting.reporting import report_incidents
from finops_pipeline.defs.partitions import WAREHOUSE_POOL
from finops_pipeline.defs.resources import FinopsSlackResource, LLMResource, OutboxResource, WarehouseResource, transports
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse import transaction

INCIDENTS = AssetKey("incidents")


class AlertSettings(Config):
    min_severity: str = "warning"  # info anomalies stay in the table and the UI without paging anyone


class DigestConfig(Config):
    day: str = Field(default="", description="The day to summarise (YYYY-MM-DD, UTC); empty: yesterday.")


def build_alerting_assets(settings: Settings) -> list[AssetsDefinition]:
    grain = settings.grain

    @asset(group_name="alerting", kinds={"openai"}, deps=[INCIDENTS], pool=WAREHOUSE_POOL,
           metadata={"dagster/table_name": "main.anomaly_reports"})
    def anomaly_report(context: AssetExecutionContext, config: AlertSettings, warehouse: WarehouseResource,
                       llm: LLMResource, outbox: OutboxResource) -> MaterializeResult:
        """The report on the incidents not alerted yet: a summary of the run and, per incident,
        ranked root-cause hypotheses, immediate actions, prevention and estimated savings, written
        by the configured LLM (any OpenAI-compatible server) in a JSON schema and kept only when
        every figure in it comes from the data; by the deterministic template otherwise (no LLM, a
        failed request, a reply that does not hold up), which the report then says. Only
        incidents the statistics flagged reach the LLM. Stored as markdown in `reports/` and, a
        row per section with its model, tokens, cost and latency, in `anomaly_reports`."""
        with warehouse.connect() as con:
            stored = report_incidents(con, grain, config.min_severity, llm.get_client() if llm.configured else None,
                                      llm.model, llm_pricing(llm.model, llm.pricing), outbox.path("reports"))
        if stored is None:
            return MaterializeResult(metadata={"incidents": 0, "report": "nothing new to report"})
        report = stored.report
        if report.used_fallback:
            context.log.warning(f"Template used for {report.fallbacks} of {len(report.analyses)} section(s): "
                                f"{report.fallback_reason}")
        return MaterializeResult(
            metadata={
                "incidents": len(stored.incident_ids),
                "report_id": stored.report_id,
                "model": report.model or "template",
                "used_fallback": report.used_fallback,
                "fallback_reason": report.fallback_reason or "",
                "llm_requests": report.requests,
                "prompt_tokens": report.prompt_tokens,
                "completion_tokens": report.completion_tokens,
                "llm_cost_usd": round(report.cost_usd, 6),
                "llm_latency_s": round(report.latency_s, 3),
                "path": MetadataValue.path(str(stored.path)),
                "report": MetadataValue.md(report.markdown),
            }
        )

    @asset(group_name="alerting", kinds={"slack"}, deps=[anomaly_report], pool=WAREHOUSE_POOL,
           metadata={"dagster/table_name": "main.alert_ledger"})
    def anomaly_alerts(context: AssetExecutionContext, config: AlertSettings, warehouse: WarehouseResource,
                       slack: FinopsSlackResource, outbox: OutboxResource) -> MaterializeResult:
        """One alert per new incident, with its chart in the thread: to Slack through dagster-slack
        when SLACK_BOT_TOKEN is set (the channel routed by team), otherwise as JSON + markdown
        files in the outbox folder. Each message goes through the `alert_outbox` table: enqueued
        with the ledger's record in one transaction, then delivered, its Slack ts recorded, so no
        incident is alerted twice and nothing is lost when Slack is down or the process dies
        mid-send (the next sensor tick retries). A sent alert whose incident grows, escalates,
        resolves, is answered or is re-scored is edited in place, and what changed is posted in
        its thread."""
        with warehouse.connect() as con:
            done = notify(con, grain, config.min_severity, slack.destination, slack.routing, transports(slack, outbox),
                          outbox.dagster_url, outbox.path("charts"))
        delivery = done.delivery
        for failed_id, error in delivery.failed.items():
            context.log.warning(f"Message {failed_id} not delivered ({error}): it stays in alert_outbox, retried on a later tick")
        context.log.info(f"Queued {len(done.queued)} alert(s) and {len(done.revised)} revision(s); delivered "
                         f"{len(delivery.sent)} message(s) via {slack.destination}, recovered {len(delivery.recovered)}, "
                         f"{done.waiting} waiting")
        return MaterializeResult(
            metadata={
                "alerts_queued": len(done.queued),
                "alerts_revised": MetadataValue.json(done.revised),
                "messages_delivered": len(delivery.sent),
                "messages_recovered": len(delivery.recovered),
                "messages_pending": done.waiting,
                "delivery_errors": MetadataValue.json(sorted(set(delivery.failed.values()))),
                "destination": slack.destination,
                "dagster/row_count": done.ledger_rows,
            }
        )

    @asset(group_name="alerting", kinds={"slack"}, deps=[INCIDENTS], pool=WAREHOUSE_POOL)
    def cost_digest(context: AssetExecutionContext, config: DigestConfig, warehouse: WarehouseResource,
                    slack: FinopsSlackResource, outbox: OutboxResource) -> MaterializeResult:
        """The daily digest, to the default channel: a day's anomalies by severity, the incidents
        still open, the largest ones, and the day's and month's usage spend against forecast.
        Delivered through `alert_outbox` like the alerts, once per day however often it runs."""
        day = date.fromisoformat(config.day) if config.day else datetime.now(timezone.utc).date() - timedelta(days=1)
        destination = slack.destination
        with warehouse.connect() as con:
            figures = digest_figures(con, day, grain.name)
            message = digest_message(figures, outbox.dagster_url)
            payload = {**message, "stem": f"digest_{day.isoformat()}",
                       "record": {"status": "sent", "digest": figures,
                                  "slack_message": {k: message[k] for k in ("text", "blocks")}}}
            with transaction(con):
                queued = enqueue(con, message_id("digest", day.isoformat()), None, "digest", destination, slack.channel,
                                 payload)
            delivery = deliver(con, transports(slack, outbox))
        context.log.info(f"Digest for {day}: {'queued' if queued else 'already queued'}; "
                         f"delivered {len(delivery.sent)} message(s)")
        return MaterializeResult(metadata={
            "day": day.isoformat(),
            "anomalies_by_severity": MetadataValue.json(figures["anomalies_by_severity"]),
            "open_incidents_by_severity": MetadataValue.json(figures["open_incidents_by_severity"]),
            "digest": MetadataValue.md(message["markdown"]),
            "destination": destination,
        })

    return [anomaly_report, anomaly_alerts, cost_digest]
