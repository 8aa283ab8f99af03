"""Configuration read from the environment, in one place.

Every variable is listed in the README's configuration table. Secrets (API keys, tokens) are not
read here: resources take them through ``dagster.EnvVar`` so their values never reach the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from finops_pipeline.alerting.routing import parse_routes

DEFAULT_START_DATE = "2025-01-01"
SOURCES = ("demo", "focus", "aws_cost_explorer")
GRANULARITIES = ("daily", "hourly")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    duckdb_path: Path
    source: str  # one or more of SOURCES, comma-separated
    focus_path: str | None
    aws_billing_account_id: str | None
    start_date: str
    granularity: str  # daily or hourly: the partitions, cost table, forecasts and anomalies
    outbox_dir: Path
    reports_dir: Path
    llm_model: str
    llm_pricing: str | None  # USD per 1M prompt,completion tokens
    llm_timeout_seconds: float
    slack_channel: str
    slack_api_url: str | None
    slack_routes: str | None  # team → channel map, see alerting.routing
    dagster_url: str

    @property
    def charts_dir(self) -> Path:
        return self.data_dir / "charts"


def load_settings(environ: os._Environ | dict | None = None) -> Settings:
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("FINOPS_DATA_DIR") or Path.cwd() / "data").resolve()
    duckdb_path = Path(env.get("FINOPS_DUCKDB_PATH") or data_dir / "finops.duckdb").resolve()
    source = ",".join(s.strip().lower() for s in (env.get("FINOPS_SOURCE") or "demo").split(",") if s.strip())
    unknown = [s for s in source.split(",") if s not in SOURCES]
    if unknown or not source:
        raise ValueError(f"FINOPS_SOURCE={env.get('FINOPS_SOURCE')!r}: unknown source(s) {', '.join(unknown)}; "
                         f"use one or more of {', '.join(SOURCES)}, comma-separated")
    if env.get("FINOPS_SLACK_ROUTES"):
        parse_routes(env["FINOPS_SLACK_ROUTES"], "#default")  # a bad map fails at load, naming what is wrong
    start_date = env.get("FINOPS_START_DATE") or DEFAULT_START_DATE
    try:
        date.fromisoformat(start_date)
    except ValueError as exc:
        raise ValueError(f"FINOPS_START_DATE={start_date!r} is not an ISO date (YYYY-MM-DD)") from exc
    granularity = (env.get("FINOPS_GRANULARITY") or "daily").strip().lower()
    if granularity not in GRANULARITIES:
        raise ValueError(f"FINOPS_GRANULARITY={env.get('FINOPS_GRANULARITY')!r}: use daily or hourly")
    return Settings(
        data_dir=data_dir,
        duckdb_path=duckdb_path,
        source=source,
        focus_path=env.get("FINOPS_FOCUS_PATH") or None,
        aws_billing_account_id=env.get("FINOPS_AWS_BILLING_ACCOUNT_ID") or None,
        start_date=start_date,
        granularity=granularity,
        outbox_dir=Path(env.get("FINOPS_OUTBOX_DIR") or data_dir / "outbox").resolve(),
        reports_dir=Path(env.get("FINOPS_REPORTS_DIR") or data_dir / "reports").resolve(),
        llm_model=env.get("FINOPS_LLM_MODEL") or "gpt-4o-mini",
        llm_pricing=env.get("FINOPS_LLM_PRICING") or None,
        llm_timeout_seconds=float(env.get("FINOPS_LLM_TIMEOUT_SECONDS") or 60),
        slack_channel=env.get("FINOPS_SLACK_CHANNEL") or "#finops-alerts",
        slack_api_url=env.get("FINOPS_SLACK_API_URL") or None,
        slack_routes=env.get("FINOPS_SLACK_ROUTES") or None,
        dagster_url=(env.get("FINOPS_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
    )


def export_duckdb_path(settings: Settings) -> None:
    """dbt runs in a subprocess and reads the DuckDB path from its profile's env_var; make sure the
    subprocess sees the same resolved path as Python does, even when the user left it unset."""
    os.environ["FINOPS_DUCKDB_PATH"] = str(settings.duckdb_path)
    # DuckDB creates the file but not its folder; without it every connection attempt fails.
    settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
