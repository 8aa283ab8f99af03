"""An OpenAI bill end to end, in process: the Admin API over HTTP → raw_billing → dbt's AI usage mart
and API-key series → forecasts → anomalies. A retry loop on one key pages once, on the project ×
model series, naming the key; the key's own incident is explained by it. A price per token that
triples pages with what the tokens cost above their usual price."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import numpy as np
import pytest

from benchmarks.protocol_servers import OpenAIAdminServer
from finops_pipeline_tests.conftest import backfilled

pytestmark = pytest.mark.integration

START, LAST = datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 3, 11, tzinfo=timezone.utc)
LOOP_DAY = datetime(2026, 3, 8, tzinfo=timezone.utc)
PRICE_DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)  # proj_batch's input tokens cost three times as much
MODEL = "gpt-4o-2024-08-06"
# key → (project, uncached input tokens a day, output tokens a day)
KEYS = {"key_web": ("proj_chat", 8_000_000, 2_000_000), "key_cron": ("proj_chat", 2_000_000, 500_000),
        "key_retry": ("proj_chat", 3_000_000, 600_000), "key_etl": ("proj_batch", 100_000_000, 25_000_000)}
PRICE = {"input": Decimal("2.50"), "output": Decimal("10")}  # per 1M tokens


def bill() -> tuple[list[dict], dict]:
    rng = np.random.default_rng(5)
    costs, usage = [], []
    day = START
    while day <= LAST:
        spend: dict[tuple, Decimal] = {}
        for key, (project, inputs, outputs) in KEYS.items():
            scale = rng.lognormal(0, 0.05) * (30 if key == "key_retry" and day == LOOP_DAY else 1)
            n_in, n_out = int(inputs * scale), int(outputs * scale)
            usage.append({"start": day + timedelta(hours=10), "model": MODEL, "project_id": project, "api_key_id": key,
                          "input_tokens": n_in, "output_tokens": n_out, "num_model_requests": n_in // 4000})
            for kind, n in (("input", n_in), ("output", n_out)):
                price = PRICE[kind] * (3 if (project, kind, day) == ("proj_batch", "input", PRICE_DAY) else 1)
                spend[project, kind] = spend.get((project, kind), Decimal(0)) + price * n / 1_000_000
        costs += [{"start": day, "project_id": project, "line_item": f"{MODEL}, {kind}", "value": round(amount, 6)}
                  for (project, kind), amount in spend.items()]
        day += timedelta(days=1)
    return costs, {"completions": usage}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    data = tmp_path_factory.mktemp("ai")
    with OpenAIAdminServer(*bill()) as server:
        env = {"FINOPS_SOURCE": "openai", "FINOPS_START_DATE": f"{START:%Y-%m-%d}", "FINOPS_DATA_DIR": str(data),
               "FINOPS_OPENAI_ADMIN_URL": server.base_url, "OPENAI_ADMIN_KEY": OpenAIAdminServer.KEY,
               "FINOPS_AI_TEAMS": "proj_chat=assistants,proj_batch=data"}
        db = backfilled(env, f"{START:%Y-%m-%d}", f"{LAST:%Y-%m-%d}")
    with duckdb.connect(str(db), read_only=True) as con:
        yield con


def test_the_ai_mart_holds_tokens_and_money_per_key(warehouse):
    rows = warehouse.execute("""SELECT api_key_id, token_type, team, sum(quantity), sum(effective_cost), min(cost_source)
                                FROM daily_ai_usage WHERE day = '2026-01-05' GROUP BY ALL ORDER BY 1, 2""").fetchall()
    assert [r[:3] for r in rows] == [(k, t, "data" if k == "key_etl" else "assistants")
                                     for k in sorted(KEYS) for t in ("input", "output")]
    # The mart's money is the cost endpoint's to the cent, and all of it actual.
    (total,) = warehouse.execute("SELECT sum(effective_cost) FROM daily_ai_usage").fetchone()
    (billed,) = warehouse.execute("SELECT sum(BilledCost) FROM raw_billing").fetchone()
    assert round(total, 2) == round(billed, 2) and {r[5] for r in rows} == {"actual"}


def test_each_key_is_a_series(warehouse):
    keys = warehouse.execute("""SELECT DISTINCT series_key, team FROM daily_cost_series WHERE series_level = 'api_key'
                                ORDER BY 1""").fetchall()
    assert keys == sorted((f"api_key:OpenAI/{project}/{key}", "data" if key == "key_etl" else "assistants")
                          for key, (project, *_) in KEYS.items())


def test_a_retry_loop_on_one_key_pages_once_naming_the_key(warehouse):
    incidents = warehouse.execute("""SELECT series_level, series_key, severity, explained_by, incident_id
                                     FROM incidents WHERE start_period = ? ORDER BY series_level""",
                                  [LOOP_DAY]).fetchall()
    paging = [i for i in incidents if i[2] in ("warning", "critical") and i[3] is None]
    assert [(level, key) for level, key, *_ in paging] == [
        ("sub_account_service", f"sub_account_service:OpenAI/proj_chat/{MODEL}")]
    key_incident = next(i for i in incidents if i[0] == "api_key")
    assert key_incident[1] == "api_key:OpenAI/proj_chat/key_retry" and key_incident[3] == paging[0][4]
    (causes,) = warehouse.execute("SELECT top_contributors FROM anomalies WHERE anomaly_id = ?", [paging[0][4]]).fetchone()
    assert json.loads(causes)[0]["name"] == "key_retry"


def test_a_tripled_price_per_token_pages_with_its_excess(warehouse):
    found = warehouse.execute("""SELECT detectors, severity, actual_cost - expected_cost FROM anomalies
                                 WHERE series_key = ? AND period_start = ?""",
                              [f"sub_account_service:OpenAI/proj_batch/{MODEL}", PRICE_DAY]).fetchall()
    assert len(found) == 1 and "unit_cost_rise" in found[0][0].split(",") and found[0][1] == "warning"
    # 100M input tokens at $5 more per 1M than their median price (the day's noise aside).
    assert found[0][2] == pytest.approx(500.0, rel=0.1)


def test_the_alert_says_what_the_rule_saw_in_its_own_figures(warehouse):
    from finops_pipeline.alerting.incident import Incident
    from finops_pipeline.alerting.messages import markdown_message, slack_message

    row = warehouse.execute("SELECT * FROM anomalies WHERE series_key = ? AND period_start = ?",
                            [f"sub_account_service:OpenAI/proj_batch/{MODEL}", PRICE_DAY]).df()
    incident = Incident.from_row(next(row.itertuples(index=False)))
    # The price per token; and, the day's input costing three times as much, its cost per request.
    finding = next(f for f in incident.findings if f.startswith("input $7.50 per 1M tokens against $2.50"))
    assert finding in json.dumps(slack_message(incident, "http://localhost:3000", None))
    assert f"- Found: {finding}" in markdown_message(incident, "http://localhost:3000", None)
    assert Incident.from_record(json.loads(json.dumps(incident.to_record(), default=str))).findings == incident.findings


def test_the_report_and_the_model_get_the_usage_beside_the_dollars(warehouse):
    """Every anomaly of an AI series carries its tokens, requests and $ per 1M tokens against the
    usual: the alert, the report's figures and the data the LLM is given all show it, and a
    dollar figure from it is one the model may cite."""
    from finops_pipeline.alerting.facts import findings_list
    from finops_pipeline.alerting.incident import Incident
    from finops_pipeline.alerting.llm import data_figures, incident_data

    row = warehouse.execute("SELECT * FROM anomalies WHERE series_key = ? AND period_start = ?",
                            [f"sub_account_service:OpenAI/proj_chat/{MODEL}", LOOP_DAY]).df()
    incident = Incident.from_row(next(row.itertuples(index=False)))
    (usage,) = [f for f in incident.findings if f.startswith("usage: ")]
    # The retry loop: about 8 times the project's usual tokens and requests, at the usual price.
    assert "requests" in usage and "per 1M tokens; usually" in usage
    assert f"usage: {usage.removeprefix('usage: ')}" in findings_list([incident])
    data = incident_data(incident, [])
    assert data["incident"]["findings"] == list(incident.findings)
    price = float(usage.split("$")[1].split(" ")[0])
    assert round(price, 2) in data_figures(data)
