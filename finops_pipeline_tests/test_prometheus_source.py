"""Self-hosted AI spend from Prometheus into raw_billing, over HTTP to a local server that answers
``/api/v1/query_range`` as Prometheus does: GPUs priced by the minutes they reported, idle streaks
and absent minutes told apart, counters' hourly increases through a restart, auth, and every bad
answer named."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from benchmarks.prometheus_server import PrometheusServer
from finops_pipeline.errors import SettingsError
from finops_pipeline.settings import load_settings
from finops_pipeline_tests.conftest import load_raw_billing
from finops_pipeline_tests.test_ai_sources import failure, rows

DAY = datetime(2026, 3, 2, tzinfo=timezone.utc)
T0 = DAY.timestamp()
A100 = "NVIDIA A100-SXM4-80GB"
PRICES = f"{A100}=3.60,*=1.20"


def scrape(hours: float = 25, every: float = 15.0) -> np.ndarray:
    """Scrape times from an hour before DAY, every ``every`` seconds."""
    return T0 - 3600 + np.arange(0, hours * 3600, every)


def gpu(node: str, index: int, times: np.ndarray, busy: np.ndarray, metric: str = "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
        gpu_type: str = A100, team: str = "ml") -> tuple:
    return ({"__name__": metric, "Hostname": node, "gpu": str(index), "modelName": gpu_type, "team": team,
             "instance": "10.0.0.1:9400"}, times, busy)


def between(times: np.ndarray, start_hour: float, end_hour: float) -> np.ndarray:
    return (times >= T0 + start_hour * 3600) & (times < T0 + end_hour * 3600)


def load(tmp_path, url: str, start: str = "2026-03-02", end: str | None = None, **env: str):
    return load_raw_billing(tmp_path, {"FINOPS_SOURCE": "prometheus", "PROMETHEUS_URL": url,
                                       "FINOPS_PROMETHEUS_GPU_PRICES": PRICES, "FINOPS_PROMETHEUS_ACCOUNT": "gpu-prod",
                                       **env}, start, end)


def gpu_hours(tmp_path) -> dict[tuple, tuple]:
    """(resource, hour) → (cost, GPU hours, busy %, idle, streak, absent) from raw_billing."""
    found = rows(tmp_path, """SELECT ResourceId, hour(ChargePeriodStart AT TIME ZONE 'UTC'), BilledCost::DOUBLE,
                                     ConsumedQuantity::DOUBLE, x_ProviderColumns
                              FROM raw_billing WHERE ResourceType = 'GPU'""")
    out = {}
    for resource, h, cost, quantity, extra in found:
        x = json.loads(extra)
        out[resource, h] = (cost, quantity, x["x_GpuBusyPct"], x["x_IdleMinutes"], x["x_IdleStreakMinutes"],
                            x["x_AbsentMinutes"])
    return out


def test_gpus_are_priced_by_the_minutes_they_report_with_idle_streaks_and_gaps_told_apart(tmp_path):
    t = scrape()
    # gpu0: busy, but idle (2 %) from 05:00 to 07:30; gpu1: busy, then idle 10:10–10:30 (20 min, a
    # checkpoint); its exporter silent from 12:00 to 12:45; gpu2 (an L4, no price of its own) appears at 18:00.
    busy0 = np.where(between(t, 5, 7.5), 0.02, 0.8)
    busy1 = np.where(between(t, 10 + 10 / 60, 10.5), 0.03, 0.7)
    silent = between(t, 12, 12.75)
    late = t >= T0 + 18 * 3600
    series = [gpu("node-a", 0, t, busy0), gpu("node-a", 1, t[~silent], busy1[~silent]),
              gpu("node-b", 0, t[late], np.full(late.sum(), 0.5), gpu_type="NVIDIA L4", team="data")]
    with PrometheusServer(series, token="prom-token-123") as server:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PROMETHEUS_BEARER_TOKEN", "prom-token-123")
            result = load(tmp_path, server.base_url, PROMETHEUS_BEARER_TOKEN="prom-token-123")
        assert result.success, failure(result)
    found = gpu_hours(tmp_path)
    # A busy hour: the full price, 60 minutes reported, nothing idle.
    assert found["node-a/gpu0", 3] == pytest.approx((3.60, 1.0, 80.0, 0, 0, 0))
    # Idle from 05:00: the streak grows through 06:00
    # (counted from at most the hour before: 120), and ends at 07:30.
    assert found["node-a/gpu0", 5][3:5] == (60, 60) and found["node-a/gpu0", 6][3:5] == (60, 120)
    assert found["node-a/gpu0", 7][3:5] == (30, 90) and found["node-a/gpu0", 8][3:5] == (0, 0)
    # A 20-minute checkpoint is idle minutes, but no long streak.
    assert found["node-a/gpu1", 10][3:5] == (20, 20)
    # Silent 12:00–12:45: Prometheus carries the last sample for five minutes, the rest is absent,
    # neither idle nor billed.
    cost, quantity, _, idle, _, absent = found["node-a/gpu1", 12]
    assert (idle, absent) == (0, 40) and quantity == pytest.approx(20 / 60) and cost == pytest.approx(1.20)
    # Not there before it was allocated; the * price for a type without one.
    assert ("node-b/gpu0", 17) not in found and found["node-b/gpu0", 18][0] == pytest.approx(1.20)
    (team,) = rows(tmp_path, "SELECT DISTINCT Tags->>'team' FROM raw_billing WHERE ResourceId = 'node-b/gpu0'")[0]
    assert team == "data"
    # The windows asked for: a day (and the hour before) in chunks Prometheus accepts, with the token.
    assert set(server.queries()) == {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", "ai_request_cost_dollars_sum",
                                     "ai_request_cost_dollars_count", "ai_api_tokens_total"}
    assert all(r["headers"]["authorization"] == "Bearer prom-token-123" for r in server.requests)
    assert not any("prom-token-123" in line for line in result.logs)


def test_the_percent_metric_is_read_when_the_ratio_one_is_absent(tmp_path):
    t = scrape()
    with PrometheusServer([gpu("node-a", 0, t, np.where(between(t, 2, 3), 4.0, 65.0), metric="DCGM_FI_DEV_GPU_UTIL")]
                          ) as server:
        assert load(tmp_path, server.base_url, FINOPS_PROMETHEUS_METRICS="gpu").success
    found = gpu_hours(tmp_path)
    assert found["node-a/gpu0", 1][2] == pytest.approx(65.0) and found["node-a/gpu0", 2][3] == 60
    asked = server.queries()
    assert asked.index("DCGM_FI_PROF_GR_ENGINE_ACTIVE") < asked.index("DCGM_FI_DEV_GPU_UTIL")


def test_counters_give_each_hours_dollars_requests_and_tokens_through_a_restart(tmp_path):
    t = scrape(every=30.0)
    per_step = np.full(len(t), 5.0)  # 10 requests a minute at $0.002 each
    count = np.cumsum(per_step)
    restart = t >= T0 + 9.5 * 3600  # the server restarts at 09:30: its counters start again from 0
    count[restart] = np.cumsum(per_step[restart]) - per_step[restart][0]
    labels = {"model": "llama-3.1-70b", "team": "web", "pod": "llm-0"}
    series = [({"__name__": "ai_request_cost_dollars_count", **labels}, t, count),
              ({"__name__": "ai_request_cost_dollars_sum", **labels}, t, count * 0.002),
              ({"__name__": "ai_api_tokens_total", **labels, "direction": "input"}, t, count * 800),
              ({"__name__": "ai_api_tokens_total", **labels, "direction": "output"}, t, count * 200)]
    with PrometheusServer(series) as server:
        assert load(tmp_path, server.base_url, FINOPS_PROMETHEUS_METRICS="requests,tokens").success
    by_hour = rows(tmp_path, """SELECT hour(ChargePeriodStart AT TIME ZONE 'UTC') AS h, SkuMeter, sum(BilledCost)::DOUBLE,
                                       sum(ConsumedQuantity)::DOUBLE, any_value(SubAccountId), any_value(ServiceName)
                                FROM raw_billing GROUP BY ALL ORDER BY 1, 2""")
    table = {(h, meter): (cost, quantity) for h, meter, cost, quantity, *_ in by_hour}
    assert table[3, "Requests"] == pytest.approx((1.20, 600))
    assert table[3, "Input Tokens"] == pytest.approx((0, 480_000)) and table[3, "Output Tokens"][1] == 120_000
    # The restart's hour loses only the minute in which the counter fell back to zero.
    assert table[9, "Requests"][1] == pytest.approx(590)
    assert {r[4] for r in by_hour} == {"web"} and {r[5] for r in by_hour} == {"llama-3.1-70b"}
    assert len({h for h, _ in table}) == 24


def test_basic_auth_and_a_refusal_that_names_the_variables_not_the_secret(tmp_path):
    t = scrape(hours=2)
    with PrometheusServer([gpu("node-a", 0, t, np.full(len(t), 0.5))], basic=("finops", "s3cret-pass")) as server:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PROMETHEUS_PASSWORD", "s3cret-pass")
            assert load(tmp_path / "ok", server.base_url, PROMETHEUS_USERNAME="finops", PROMETHEUS_PASSWORD="s3cret-pass",
                        FINOPS_PROMETHEUS_METRICS="gpu").success
            mp.setenv("PROMETHEUS_PASSWORD", "wrong")
            refused = load(tmp_path / "no", server.base_url, PROMETHEUS_USERNAME="finops", PROMETHEUS_PASSWORD="wrong",
                           FINOPS_PROMETHEUS_METRICS="gpu")
    message = failure(refused)
    assert "Prometheus" in message and "/api/v1/query_range" in message and "HTTP 401" in message
    assert "PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD" in message
    assert "s3cret" not in message and "wrong" not in message.replace("PROMETHEUS", "")


def test_bad_answers_fail_the_window_naming_the_query_series_and_field(tmp_path):
    t = scrape(hours=2)
    with PrometheusServer([gpu("node-a", 0, t, np.full(len(t), 0.5))]) as good:
        assert load(tmp_path, good.base_url, FINOPS_PROMETHEUS_METRICS="gpu").success
    before = rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")
    bad_point = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Hostname": "node-a", "gpu": "0"},
         "values": [[T0, "0.5"], [T0 + 60, None]]}]}}
    with PrometheusServer(script=[(200, {}, bad_point)]) as server:
        result = load(tmp_path, server.base_url, FINOPS_PROMETHEUS_METRICS="gpu")
    message = failure(result)
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in message and 'Hostname="node-a"' in message and "values[1]" in message
    with PrometheusServer(script=[(422, {}, {"status": "error", "errorType": "execution",
                                             "error": "query processing would load too many samples"})]) as server:
        result = load(tmp_path, server.base_url, FINOPS_PROMETHEUS_METRICS="gpu")
    assert "HTTP 422" in failure(result) and "too many samples" in failure(result)
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before  # nothing lost


def test_a_window_of_days_is_asked_a_day_at_a_time(tmp_path):
    t = scrape(hours=3 * 24 + 1, every=60.0)
    with PrometheusServer([gpu("node-a", 0, t, np.full(len(t), 0.5))]) as server:
        result = load(tmp_path, server.base_url, "2026-03-02", "2026-03-04", FINOPS_PROMETHEUS_METRICS="gpu")
        assert result.success, failure(result)
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost)::DOUBLE FROM raw_billing") == [(72, pytest.approx(72 * 3.60))]


@pytest.mark.parametrize("env, names", [
    ({}, "PROMETHEUS_URL"),
    ({"PROMETHEUS_URL": "http://p:9090", "FINOPS_PROMETHEUS_GPU_PRICES": ""}, "FINOPS_PROMETHEUS_GPU_PRICES"),
    ({"PROMETHEUS_URL": "http://p:9090", "FINOPS_PROMETHEUS_GPU_PRICES": "A100=cheap"}, "FINOPS_PROMETHEUS_GPU_PRICES"),
    ({"PROMETHEUS_URL": "http://p:9090", "FINOPS_PROMETHEUS_METRICS": "gpu,disk"}, "FINOPS_PROMETHEUS_METRICS"),
    ({"PROMETHEUS_URL": "http://p:9090", "FINOPS_PROMETHEUS_GPU_PRICES": "*=2",
      "FINOPS_PROMETHEUS_GPU_METRICS": "my_gpu_busy=fraction"}, "FINOPS_PROMETHEUS_GPU_METRICS"),
])
def test_unusable_settings_name_their_variable(env, names):
    from finops_pipeline.sources.prometheus import PrometheusSource
    with pytest.raises(SettingsError, match=names):
        PrometheusSource.from_settings(load_settings({"FINOPS_SOURCE": "prometheus", **env}))


def test_hours_are_the_same_whatever_window_reads_them(tmp_path):
    """A re-run of one day, or the day read inside a longer window, gives the same rows."""
    t = scrape(hours=2 * 24 + 1, every=60.0)
    busy = np.where(between(t, 20, 30), 0.01, 0.6)
    with PrometheusServer([gpu("node-a", 0, t, busy)]) as server:
        assert load(tmp_path / "one", server.base_url, "2026-03-03", FINOPS_PROMETHEUS_METRICS="gpu").success
        assert load(tmp_path / "two", server.base_url, "2026-03-02", "2026-03-03", FINOPS_PROMETHEUS_METRICS="gpu").success
    sql = """SELECT ChargePeriodStart, BilledCost, x_ProviderColumns FROM raw_billing
             WHERE ChargePeriodStart >= '2026-03-03 02:00:00+00' ORDER BY 1"""
    assert rows(tmp_path / "one", sql) == rows(tmp_path / "two", sql)

