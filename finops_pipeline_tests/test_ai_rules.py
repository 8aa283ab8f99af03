"""The AI rules on a project × model's usage: a cache that stops hitting, a dearer price per token and
requests that grew each page with the dollars they cost; a retry loop (more of the same) is none
of theirs."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from finops_pipeline.detection.ai_rules import ai_hits
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
