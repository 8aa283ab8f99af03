"""The pipeline's settings: one model, read from the environment in one place.

``load_settings`` is called once, by the last line of ``definitions.py``; everything else is handed
the ``Settings`` it needs. Every variable is listed in docs/configuration.md. Secret values (API
keys, tokens) are never read here: the settings only record which ones are set, and resources
take them through ``dagster.EnvVar`` so their values never reach the UI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from finops_pipeline.alerting.llm import llm_pricing
from finops_pipeline.alerting.routing import parse_routes
from finops_pipeline.errors import SettingsError
from finops_pipeline.grain import GRAINS, Grain
from finops_pipeline.mapping_spec import parse_mapping
from finops_pipeline.sources.registry import source_names

DEFAULT_START_DATE = "2025-01-01"
SECRETS = ("OPENAI_API_KEY", "SLACK_BOT_TOKEN", "FINOPS_SLACK_WEBHOOK_URL", "OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY",
           "PROMETHEUS_BEARER_TOKEN", "PROMETHEUS_PASSWORD")
# Source settings named as their tools name them, not FINOPS_*, handed to source plugins too.
SOURCE_VARIABLES = ("PROMETHEUS_URL", "PROMETHEUS_USERNAME")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    data_dir: Path
    duckdb_path: Path
    sources: tuple[str, ...]  # billing source plugins, by name (see sources.registry)
    focus_path: str | None = None
    aws_billing_account_id: str | None = None
    start_date: date
    granularity: str = "daily"  # the period inside a (daily) partition: daily or hourly
    outbox_dir: Path
    reports_dir: Path
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    llm_pricing: str | None = None  # USD per 1M prompt,completion tokens
    llm_timeout_seconds: float = 60.0
    slack_channel: str = "#finops-alerts"
    slack_api_url: str | None = None
    slack_routes: str | None = None  # team → channel map, see alerting.routing
    dagster_url: str = "http://127.0.0.1:3000"
    secrets_set: frozenset[str] = frozenset()  # the names of SECRETS that have a value
    source_options: Mapping[str, str] = {}  # every FINOPS_* and SOURCE_VARIABLES variable, for source plugins

    @property
    def grain(self) -> Grain:
        return GRAINS[self.granularity]

    @property
    def charts_dir(self) -> Path:
        return self.data_dir / "charts"

    @property
    def source(self) -> str:
        """The sources as FINOPS_SOURCE spells them."""
        return ",".join(self.sources)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name) or ""
    try:
        value = float(text) if text.strip() else default
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name}={text!r}: use a number of seconds above 0 (default {default:g})")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``environ`` (default: the process environment); a ``SettingsError``
    naming the variable when one is unusable."""
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("FINOPS_DATA_DIR") or Path.cwd() / "data").resolve()
    sources = tuple(s.strip().lower() for s in (env.get("FINOPS_SOURCE") or "demo").split(",") if s.strip())
    known = source_names()
    unknown = [s for s in sources if s not in known]
    if unknown or not sources:
        raise SettingsError(f"FINOPS_SOURCE={env.get('FINOPS_SOURCE')!r}: unknown source(s) {', '.join(unknown)}; "
                            f"use one or more of {', '.join(known)}, comma-separated")
    # Values parsed later are parsed once here too, so a bad one fails at load, naming the variable.
    for variable, parse in (("FINOPS_SLACK_ROUTES", lambda v: parse_routes(v, "#default")),
                            ("FINOPS_AI_TEAMS", lambda v: parse_mapping(v, "FINOPS_AI_TEAMS", "project=team")),
                            ("FINOPS_LLM_PRICING", lambda v: llm_pricing("", v))):
        if env.get(variable):
            try:
                parse(env[variable])
            except ValueError as exc:
                raise SettingsError(str(exc) if str(exc).startswith(variable) else f"{variable}: {exc}") from None
    start_date = env.get("FINOPS_START_DATE") or DEFAULT_START_DATE
    try:
        start = date.fromisoformat(start_date)
    except ValueError:
        raise SettingsError(f"FINOPS_START_DATE={start_date!r} is not an ISO date (YYYY-MM-DD)") from None
    granularity = (env.get("FINOPS_GRANULARITY") or "daily").strip().lower()
    if granularity not in GRAINS:
        raise SettingsError(f"FINOPS_GRANULARITY={env.get('FINOPS_GRANULARITY')!r}: use daily or hourly")
    return Settings(
        data_dir=data_dir,
        duckdb_path=Path(env.get("FINOPS_DUCKDB_PATH") or data_dir / "finops.duckdb").resolve(),
        sources=sources,
        focus_path=env.get("FINOPS_FOCUS_PATH") or None,
        aws_billing_account_id=env.get("FINOPS_AWS_BILLING_ACCOUNT_ID") or None,
        start_date=start,
        granularity=granularity,
        outbox_dir=Path(env.get("FINOPS_OUTBOX_DIR") or data_dir / "outbox").resolve(),
        reports_dir=Path(env.get("FINOPS_REPORTS_DIR") or data_dir / "reports").resolve(),
        llm_model=env.get("FINOPS_LLM_MODEL") or "gpt-4o-mini",
        llm_base_url=env.get("OPENAI_BASE_URL") or None,
        llm_pricing=env.get("FINOPS_LLM_PRICING") or None,
        llm_timeout_seconds=_number(env, "FINOPS_LLM_TIMEOUT_SECONDS", 60.0),
        slack_channel=env.get("FINOPS_SLACK_CHANNEL") or "#finops-alerts",
        slack_api_url=env.get("FINOPS_SLACK_API_URL") or None,
        slack_routes=env.get("FINOPS_SLACK_ROUTES") or None,
        dagster_url=(env.get("FINOPS_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
        secrets_set=frozenset(name for name in SECRETS if env.get(name)),
        source_options={k: v for k, v in env.items()
                        if (k.startswith("FINOPS_") or k in SOURCE_VARIABLES) and k not in SECRETS},
    )
