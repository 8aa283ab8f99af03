"""The report workflow: the incidents no alert has announced yet, analysed (by the LLM when one
is configured, else by the template), written as markdown and stored in `anomaly_reports`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import openai
import pandas as pd

from finops_pipeline.alerting.delivery import atomic_write
from finops_pipeline.alerting.history import history_records, series_history
from finops_pipeline.alerting.ledger import pending_incidents
from finops_pipeline.alerting.report import RunReport, build_report
from finops_pipeline.grain import Grain
from finops_pipeline.warehouse import replace_window


@dataclass(frozen=True)
class StoredReport:
    report: RunReport
    report_id: str
    incident_ids: list[str]
    path: Path


def report_incidents(con: duckdb.DuckDBPyConnection, grain: Grain, min_severity: str, client: openai.OpenAI | None,
                     model: str, pricing: tuple[float, float], reports_dir: Path) -> StoredReport | None:
    """Analyse the pending incidents and store the report; None when there is nothing to report."""
    facts = pending_incidents(con, min_severity)
    if not facts:
        return None
    histories = {f.incident_id: history_records(grain, series_history(con, grain, f)) for f in facts}
    report = build_report(facts, histories, client, model, pricing)
    ids = sorted(f.incident_id for f in facts)
    report_id = hashlib.sha256("|".join(ids).encode()).hexdigest()[:16]
    created = datetime.now(timezone.utc)
    path = reports_dir / f"report_{created:%Y%m%dT%H%M%S}_{report_id}.md"
    atomic_write(path, report.markdown)
    rows = pd.DataFrame([{
        "row_id": f"{report_id}:{a.incident_id or 'run'}", "report_id": report_id,
        "kind": "incident" if a.incident_id else "run", "incident_id": a.incident_id, "created_at": created,
        "incident_ids": json.dumps(ids if a.incident_id is None else [a.incident_id]), "model": a.model,
        "used_fallback": a.used_fallback, "fallback_reason": a.fallback_reason, "prompt_tokens": a.prompt_tokens,
        "completion_tokens": a.completion_tokens, "cost_usd": a.cost_usd, "latency_s": a.latency_s, "requests": a.requests,
        "summary": a.summary,
        "analysis": json.dumps(a.data) if a.data else None,
        "markdown": a.markdown if a.incident_id else report.markdown,
    } for a in report.analyses])
    replace_window(con, "anomaly_reports", rows, "report_id = ?", [report_id])
    return StoredReport(report, report_id, ids, path)
