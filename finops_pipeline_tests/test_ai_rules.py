"""The AI rules on a project × model's usage: a cache that stops hitting, a dearer price per token and
requests that grew each page with the dollars they cost; a retry loop (more of the same) is none
of theirs."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from finops_pipeline.detection.ai_rules import ai_hits, idle_gpus, runaway_key
from finops_pipeline.detection.scoring import Thresholds

KEY = "sub_account_service:OpenAI/proj_chat/gpt-4o"
DAY = timedelta(days=1)
START = date(2026, 1, 1)
PRICE = {"input": 2.5e-6, "cached_input": 1.25e-6, "output": 10e-6}


def usage(days: int = 40, **changes) -> pd.DataFrame:
    """``days`` of a steady series (400M input tokens a day, half of them cached; 40M output; 20,000
    requests), with ``changes``: day index → dict of what differs that day."""
    rows = []
    for i in range(days):
        day = START + i * DAY
        c = changes.get(f"day{i}", {})
        volume, share = 800e6 * c.get("volume", 1.0), c.get("cached_share", 0.5)
        tokens = {"input": volume * (1 - share), "cached_input": volume * share, "output": 40e6 * c.get("volume", 1.0)}
        for token_type, n in tokens.items():
            price = PRICE[token_type] * c.get("price", {}).get(token_type, 1.0)
            rows.append({"period": day, "series_key": KEY, "token_type": token_type, "quantity": n, "cost": n * price,
                         "requests": 20_000 * c.get("requests", c.get("volume", 1.0)) if token_type == "input" else None})
    return pd.DataFrame(rows)


def hits(frame: pd.DataFrame, day: int):
    return [(h.rule, round(h.actual - h.expected, 2)) for h in ai_hits(frame, [START + day * DAY], DAY, Thresholds())]


def test_a_steady_series_has_nothing():
    frame = usage()
    assert [h for d in range(40) for h in hits(frame, d)] == []


def test_a_cache_that_stops_hitting_costs_the_missed_tokens_at_the_price_difference():
    # 50 % → 5 % cached on 800M input tokens: 360M more at $2.50 instead of $1.25 per 1M.
    assert hits(usage(day35={"cached_share": 0.05}), 35) == [("cache_collapse", 450.0)]


def test_a_dearer_price_per_token_pays_its_difference():
    # The input price doubles (a long-context tier): 400M tokens × $2.50 more per 1M.
    assert hits(usage(day35={"price": {"input": 2.0}}), 35) == [("unit_cost_rise", 1000.0)]


def test_requests_that_cost_twice_as_much_each():
    # The same tokens in a third of the requests: each costs 3 times as much; the day's $1,900 against
    # its 6,667 requests at the usual $0.095.
    assert hits(usage(day35={"requests": 1 / 3}), 35) == [("cost_per_request", pytest.approx(1266.67, abs=0.01))]


def test_a_retry_loop_is_more_of_the_same_not_theirs():
    # Ten times the traffic at the usual ratios: the cost band's to see (and the key's series).
    assert hits(usage(day35={"volume": 10.0}), 35) == []


def test_a_cache_drop_with_traffic_gone_is_not_a_collapse():
    assert hits(usage(day35={"cached_share": 0.05, "volume": 0.2}), 35) == []


def key_usage(weeks: int = 6, loop_day: int | None = None, factor: float = 1.0, requests: bool = True) -> pd.DataFrame:
    """One API key a day: 2,000 requests on weekdays, 400 at weekends, $0.05 each; ``factor``
    times as many on ``loop_day``."""
    rows = []
    for i in range(7 * weeks):
        day = START + i * DAY
        n = (400 if day.weekday() >= 5 else 2000) * (factor if i == loop_day else 1.0)
        rows.append({"period": day, "series_key": "api_key:OpenAI/proj_chat/key_bot", "requests": n if requests else None,
                     "tokens": n * 3000, "cost": n * 0.05})
    return pd.DataFrame(rows)


def runaway(frame: pd.DataFrame, day: int):
    return [(h.rule, round(h.actual - h.expected, 2), h.note)
            for h in runaway_key(frame, [START + day * DAY], DAY, 7, Thresholds())]


def test_a_key_in_a_retry_loop_pays_its_requests_beyond_the_usual():
    # Day 39 is a Monday: 8,000 requests against a usual 2,000; $400 against $100.
    day = 39
    assert (START + day * DAY).weekday() == 0
    [(rule, excess, note)] = runaway(key_usage(loop_day=day, factor=4), day)
    assert rule == "runaway_key" and excess == 300.0 and "requests 8,000 against a usual 2,000" in note


def test_a_weekday_after_a_weekend_is_not_a_runaway():
    frame = key_usage()
    assert [h for d in range(42) for h in runaway(frame, d)] == []


def test_without_request_counts_tokens_tell_the_runaway():
    [(rule, excess, note)] = runaway(key_usage(loop_day=39, factor=5, requests=False), 39)
    assert note.startswith("tokens 30,000,000 against a usual 6,000,000") and excess == 400.0


def test_a_small_key_tripling_is_below_the_floor():
    frame = key_usage(loop_day=39, factor=3)
    frame["cost"] /= 100  # $1 a day
    assert runaway(frame, 39) == []


def gpu_rows(idle_minutes: int, cost: float = 8 * 3.6, idle_cost: float | None = None, absent: int = 0) -> pd.DataFrame:
    """One hour of a node's 8 GPUs at $3.60: one of them idle ``idle_minutes`` (its idle cost in
    ``idle_cost``, as queries.gpu_usage gives it for streaks long enough)."""
    rows = [{"period": START, "series_key": "sub_account_service:Self-hosted/gpu-prod/GPU A100", "resource_id": f"n1/gpu{i}",
             "cost": cost / 8, "idle_cost": 0.0, "idle_minutes": 0, "idle_streak_minutes": 0, "absent_minutes": 0}
            for i in range(8)]
    rows[3].update(idle_cost=3.6 * idle_minutes / 60 if idle_cost is None else idle_cost, idle_minutes=idle_minutes,
                   idle_streak_minutes=idle_minutes, absent_minutes=absent)
    return pd.DataFrame(rows)


def test_an_idle_gpu_is_its_idle_minutes_cost_named_by_resource():
    [hit] = idle_gpus(gpu_rows(45, absent=5), [START], Thresholds.for_granularity("hourly"))
    assert hit.rule == "idle_gpu" and round(hit.actual - hit.expected, 2) == 2.70 and hit.actual == pytest.approx(28.8)
    assert hit.note.startswith("n1/gpu3 idle 45 min") and "5 min absent" in hit.note


def test_a_cheap_idle_gpu_is_not_worth_a_page_but_a_node_of_them_is():
    # $1 an hour idle: below gpu_idle_usd_an_hour.
    assert idle_gpus(gpu_rows(60, idle_cost=1.0), [START], Thresholds()) == []
    assert idle_gpus(gpu_rows(0), [START], Thresholds()) == []
    # Four such GPUs of one node idle together burn $4 an hour: that pages.
    node = gpu_rows(0)
    node.loc[:3, ["idle_cost", "idle_minutes", "idle_streak_minutes"]] = [1.0, 60, 60]
    [hit] = idle_gpus(node, [START], Thresholds())
    assert round(hit.actual - hit.expected, 2) == 4.0 and hit.note.count(" idle 60 min") == 4


def test_an_idle_gpu_pages_at_its_own_floor_whatever_share_of_the_series_it_is():
    from finops_pipeline.detection.series import waste_severity
    t = Thresholds.for_granularity("hourly")
    [hit] = idle_gpus(gpu_rows(60), [START], t)  # one GPU of eight: 14 % of the hour's cost
    assert waste_severity(hit.actual - hit.expected, t) == "warning"


def test_an_ai_series_usage_is_told_beside_its_usual():
    from finops_pipeline.detection.ai_rules import usage_note
    frame = usage(day35={"cached_share": 0.05})
    note = usage_note(frame, START + 35 * DAY, DAY, Thresholds())
    assert note == ("usage: 840.0M tokens, 5% of input cached, 20,000 requests, $2.80 per 1M tokens; "
                    "usually 840.0M tokens, 50% of input cached, 20,000 requests, $2.26 per 1M tokens")
    keys = key_usage(loop_day=39, factor=4)
    assert usage_note(keys, START + 39 * DAY, DAY, Thresholds()).startswith("usage: 24.0M tokens, 8,000 requests")
