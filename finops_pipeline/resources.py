"""Resources, each configured from the environment. Secrets go through ``dagster.EnvVar`` so the
UI shows the variable's name, never its value."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import boto3
import duckdb
import pandas as pd
from dagster import ConfigurableResource, EnvVar
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from dagster_slack import SlackResource
from openai import OpenAI
from pydantic import Field
from slack_sdk import WebClient

from finops_pipeline.alerting.routing import Routes, parse_routes
from finops_pipeline.settings import Settings
from finops_pipeline.sources import aws_cost_explorer, demo
from finops_pipeline.sources.staging import discover, load_files, stage_frame
from finops_pipeline.sources.validation import load_staged


class BillingSourceResource(ConfigurableResource):
    """Where line items come from, one or more of: ``demo`` (the embedded, deterministic demo
    bill), ``focus`` (FOCUS export files under ``focus_path``), ``aws_cost_explorer``."""

    source: str = Field(default="demo", description="FINOPS_SOURCE: demo, focus and/or aws_cost_explorer, comma-separated.")
    focus_path: str | None = Field(default=None, description="FINOPS_FOCUS_PATH: folder or glob of FOCUS exports.")
    aws_billing_account_id: str | None = Field(
        default=None, description="FINOPS_AWS_BILLING_ACCOUNT_ID: the payer account, for Cost Explorer rows."
    )
    granularity: str = Field(default="daily", description="FINOPS_GRANULARITY: daily or hourly line items.")

    @property
    def names(self) -> list[str]:
        return [s.strip() for s in self.source.split(",") if s.strip()]

    def load(self, con: duckdb.DuckDBPyConnection, source: str, start: date, end: date) -> int:
        """Validate ``source``'s line items whose charge period starts in ``[start, end)`` (dates, or
        naive UTC datetimes for hours) and make them its rows of ``raw_billing``, all or nothing;
        returns the rows written."""
        if source == "focus":
            if not self.focus_path:
                raise ValueError("FINOPS_SOURCE=focus needs FINOPS_FOCUS_PATH (a folder or glob of FOCUS exports)")
            return load_files(con, discover(self.focus_path), source, start, end)
        stage_frame(con, self.fetch(source, start, end), source)
        return load_staged(con, source, start, end)

    def fetch(self, source: str, start: date, end: date) -> pd.DataFrame:
        """The FOCUS rows of a source that produces them in memory (the demo bill, Cost Explorer)."""
        hourly = self.granularity == "hourly"
        if source == "demo":
            return demo.generate_hourly(start, end) if hourly else demo.generate(start, end)
        if source == "aws_cost_explorer":
            client = boto3.client("ce", region_name="us-east-1")  # credentials the usual AWS way
            results = aws_cost_explorer.fetch(client, start, end, "HOURLY" if hourly else "DAILY")
            return aws_cost_explorer.to_focus(results, self.aws_billing_account_id)
        raise ValueError(f"Unknown billing source {source!r}")


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


def _secret(name: str) -> EnvVar | None:
    return EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings, dbt_project_dir: Path, dbt_executable: str) -> dict:
    return {
        "duckdb": DuckDBResource(database=str(settings.duckdb_path)),
        "billing_source": BillingSourceResource(source=settings.source, focus_path=settings.focus_path,
                                                aws_billing_account_id=settings.aws_billing_account_id,
                                                granularity=settings.granularity),
        "dbt": DbtCliResource(project_dir=str(dbt_project_dir), profiles_dir=str(dbt_project_dir),
                              dbt_executable=dbt_executable),
        "llm": LLMResource(api_key=_secret("OPENAI_API_KEY"), base_url=os.environ.get("OPENAI_BASE_URL") or None,
                           model=settings.llm_model, pricing=settings.llm_pricing,
                           timeout_seconds=settings.llm_timeout_seconds),
        "slack": FinopsSlackResource(token=_secret("SLACK_BOT_TOKEN"), api_url=settings.slack_api_url,
                                     channel=settings.slack_channel, routes=settings.slack_routes,
                                     webhook_url=_secret("FINOPS_SLACK_WEBHOOK_URL")),
        "outbox": OutboxResource(outbox_dir=str(settings.outbox_dir), reports_dir=str(settings.reports_dir),
                                 charts_dir=str(settings.charts_dir), dagster_url=settings.dagster_url),
    }
