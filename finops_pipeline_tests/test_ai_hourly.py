"""AI spend in hourly mode, end to end, in process: OpenAI's Admin API and a GPU cluster's
Prometheus over HTTP → raw_billing → dbt → anomalies. A retry loop on one key and a node left idle
each page in the first hourly run after they start, naming the key or the GPUs, and nothing pages
before them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import numpy as np
import pytest

from benchmarks.prometheus_server import PrometheusServer
from benchmarks.protocol_servers import OpenAIAdminServer
from finops_pipeline_tests.conftest import backfilled

pytestmark = pytest.mark.integration

START, LAST = datetime(2026, 2, 1, tzinfo=timezone.utc), datetime(2026, 2, 22, tzinfo=timezone.utc)
LOOP_START = LAST + timedelta(hours=9)  # key_loop retries everything ten times from 09:00
IDLE_START = LAST + timedelta(hours=10)  # gpu-2's job ends at 10:00 and nobody releases the node
MODEL, PRICE = "gpt-4o-2024-08-06", {"input": Decimal("2.50"), "output": Decimal("10")}
KEYS = {"key_web": 2_000_000, "key_loop": 1_000_000}  # input tokens an hour at the daily peak
A100 = "NVIDIA A100-SXM4-80GB"


def openai_bill() -> tuple[list[dict], dict]:
    rng = np.random.default_rng(3)
    costs, usage = [], []
    hour = START
    while hour < LAST + timedelta(days=1):
        shape = 0.6 + 0.4 * np.sin((hour.hour - 8) / 24 * 2 * np.pi)
        for key, tokens in KEYS.items():
            n_in = int(tokens * shape * rng.lognormal(0, 0.05) * (10 if key == "key_loop" and hour >= LOOP_START else 1))
            usage.append({"start": hour, "model": MODEL, "project_id": "proj_app", "api_key_id": key,
                          "input_tokens": n_in, "output_tokens": n_in // 5, "num_model_requests": n_in // 2000})
            for kind, n in (("input", n_in), ("output", n_in // 5)):
                costs.append({"start": hour.replace(hour=0), "project_id": "proj_app", "line_item": f"{MODEL}, {kind}",
                              "value": PRICE[kind] * n / 1_000_000})
        hour += timedelta(hours=1)
    return costs, {"completions": usage}


def cluster() -> list[tuple]:
    times = START.timestamp() - 3600 + np.arange(0, (LAST - START).total_seconds() + 25 * 3600, 60.0)
    series = []
    for node in ("gpu-1", "gpu-2"):
        for index in range(4):
            busy = np.full(len(times), 0.85)
            if node == "gpu-2":
                busy[times >= IDLE_START.timestamp()] = 0.01
            series.append(({"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Hostname": node, "gpu": str(index),
                            "modelName": A100, "team": "ml"}, times, busy))
    return series


@pytest.fixture(scope="module")
def hourly_ai(tmp_path_factory):
    data = tmp_path_factory.mktemp("ai-hourly")
    with OpenAIAdminServer(*openai_bill()) as openai, PrometheusServer(cluster()) as prometheus:
        env = {"FINOPS_SOURCE": "openai,prometheus", "FINOPS_GRANULARITY": "hourly", "FINOPS_DATA_DIR": str(data),
               "FINOPS_START_DATE": f"{START:%Y-%m-%d}", "FINOPS_OPENAI_ADMIN_URL": openai.base_url,
               "OPENAI_ADMIN_KEY": OpenAIAdminServer.KEY, "PROMETHEUS_URL": prometheus.base_url,
               "FINOPS_PROMETHEUS_METRICS": "gpu", "FINOPS_PROMETHEUS_GPU_PRICES": f"{A100}=3.60",
               "FINOPS_PROMETHEUS_ACCOUNT": "gpu-prod"}
        db = backfilled(env, f"{START:%Y-%m-%d}", f"{LAST:%Y-%m-%d}")
    with duckdb.connect(str(db), read_only=True) as con:
        yield con


def paging(con, series_key: str):
    return con.execute(
        """SELECT timezone('UTC', period_start), severity, detectors, impact_usd, findings FROM anomalies
           WHERE series_key = ? AND severity IN ('warning', 'critical') ORDER BY 1""", [series_key]).fetchall()


def test_a_retry_loop_on_one_key_pages_in_its_first_hour(hourly_ai):
    found = paging(hourly_ai, "api_key:OpenAI/proj_app/key_loop")
    assert found, "the retry loop did not page"
    first, severity, detectors, impact, findings = found[0]
    assert first == LOOP_START.replace(tzinfo=None)
    assert "runaway_key" in detectors.split(",") and impact > 15
    assert "against a usual" in findings and "usage:" in findings  # the requests, and the tokens beside them


def test_an_idle_node_pages_in_the_first_hourly_run_after_its_streak_reaches_half_an_hour(hourly_ai):
    found = paging(hourly_ai, f"sub_account_service:Self-hosted/gpu-prod/GPU {A100}")
    assert found, "the idle node did not page"
    first, severity, detectors, impact, findings = found[0]
    assert first == IDLE_START.replace(tzinfo=None) and detectors == "idle_gpu"
    # Four A100s idle the whole hour, a streak from 10:00: $14.40 of the node's $28.80 an hour.
    assert impact == pytest.approx(4 * 3.60, abs=0.2) and severity == "warning"
    assert all(f"gpu-2/gpu{i} idle" in findings for i in range(4)) and "gpu-1" not in findings


def test_nothing_pages_before_them(hourly_ai):
    (early,) = hourly_ai.execute(
        """SELECT count(*) FROM anomalies WHERE severity IN ('warning', 'critical') AND period_start < ?""",
        [LOOP_START]).fetchone()
    assert early == 0
