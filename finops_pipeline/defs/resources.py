"""Resources, each configured from the settings. Secrets go through ``dagster.EnvVar`` so the
UI shows the variable's name, never its value."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource, EnvVar
from dagster_dbt import DbtCliResource
from dagster_slack import SlackResource
from openai import OpenAI
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from finops_pipeline.alerting.delivery import FileTransport, SlackTransport, WebhookTransport
from finops_pipeline.alerting.routing import Routes, parse_routes
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse.resource import WarehouseResource


class LLMResource(ConfigurableResource):
    """Any OpenAI-compatible chat-completions server. Unconfigured (no key, no base URL), reports
    fall back to the deterministic template."""

    api_key: str | None = Field(default=None, description="OPENAI_API_KEY")
    base_url: str | None = Field(default=None, description="OPENAI_BASE_URL, for Azure OpenAI, vLLM, Ollama…")
    model: str = Field(default="gpt-4o-mini", description="FINOPS_LLM_MODEL")
    pricing: str | None = Field(default=None, description="FINOPS_LLM_PRICING: USD per 1M prompt,completion tokens "
                                                           "(default: the model's list price if known, else 0)")
    # The client retries 429 (honouring Retry-After), 5xx, timeouts and connection errors with
    # exponential back-off, up to max_retries; past that the report falls back to the template.
    timeout_seconds: float = Field(default=60.0, description="FINOPS_LLM_TIMEOUT_SECONDS")
    max_retries: int = 2

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.base_url)

    def get_client(self) -> OpenAI:
        # Local servers often need no key; the client insists on one.
        return OpenAI(
            api_key=self.api_key or "unused",
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            max_retries=self.max_retries,
        )


class FinopsSlackResource(SlackResource):
    """dagster-slack's resource, with an optional token (no token: alerts go to the outbox) and an
    API base URL for Slack-compatible gateways and tests."""

    token: str | None = Field(default=None, description="SLACK_BOT_TOKEN")  # type: ignore[assignment]
    api_url: str | None = Field(default=None, description="FINOPS_SLACK_API_URL")
    channel: str = Field(default="#finops-alerts", description="FINOPS_SLACK_CHANNEL: the default channel")
    routes: str | None = Field(default=None, description="FINOPS_SLACK_ROUTES: team → channel map (JSON, team=channel "
                                                          "pairs, or a JSON file); untagged spend goes to the default channel")

    webhook_url: str | None = Field(default=None, description="FINOPS_SLACK_WEBHOOK_URL: an incoming webhook, used "
                                                               "when there is no bot token (no threads, edits or charts)")

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @property
    def destination(self) -> str:
        """slack (a bot token), webhook (an incoming webhook), or outbox (files: neither is set)."""
        return "slack" if self.token else ("webhook" if self.webhook_url else "outbox")

    @property
    def routing(self) -> Routes:
        return parse_routes(self.routes, self.channel)

    def get_client(self) -> WebClient:
        base_url = self.api_url or WebClient.BASE_URL
        return WebClient(token=self.token, base_url=base_url.rstrip("/") + "/")


class OutboxResource(ConfigurableResource):
    """Where alerts are written when Slack is not configured, and where reports and charts live."""

    outbox_dir: str
    reports_dir: str
    charts_dir: str
    dagster_url: str = "http://127.0.0.1:3000"

    def path(self, kind: str) -> Path:
        folder = Path({"outbox": self.outbox_dir, "reports": self.reports_dir, "charts": self.charts_dir}[kind])
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def build_resources(settings: Settings, dbt: DbtCliResource) -> dict:
    def secret(name: str) -> EnvVar | None:
        return EnvVar(name) if name in settings.secrets_set else None

    return {
        "warehouse": WarehouseResource(database=str(settings.duckdb_path)),
        "dbt": dbt,
        "llm": LLMResource(api_key=secret("OPENAI_API_KEY"), base_url=settings.llm_base_url, model=settings.llm_model,
                           pricing=settings.llm_pricing, timeout_seconds=settings.llm_timeout_seconds),
        "slack": FinopsSlackResource(token=secret("SLACK_BOT_TOKEN"), api_url=settings.slack_api_url,
                                     channel=settings.slack_channel, routes=settings.slack_routes,
                                     webhook_url=secret("FINOPS_SLACK_WEBHOOK_URL")),
        "outbox": OutboxResource(outbox_dir=str(settings.outbox_dir), reports_dir=str(settings.reports_dir),
                                 charts_dir=str(settings.charts_dir), dagster_url=settings.dagster_url),
    }


def transports(slack: FinopsSlackResource, outbox: OutboxResource) -> dict:
    """Where the outbox's messages can go: files always; Slack and a webhook when configured."""
    found = {"outbox": FileTransport(outbox.path("outbox"))}
    if slack.enabled:
        found["slack"] = SlackTransport(slack.get_client())
    if slack.webhook_url:
        found["webhook"] = WebhookTransport(WebhookClient(slack.webhook_url))
    return found
