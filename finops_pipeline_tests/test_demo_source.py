"""The demo bill: deterministic, day by day, realistic enough to exercise every stage."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from finops_pipeline.sources import demo
from finops_pipeline.sources.focus import CHARGE_CATEGORIES, FOCUS_COLUMNS
import duckdb

from finops_pipeline.grain import DAILY
from finops_pipeline.sources.base import Window
from finops_pipeline.sources.load import load_source
from finops_pipeline.warehouse import migrate


@pytest.fixture(scope="module")
def year() -> pd.DataFrame:
    return demo.generate(date(2025, 1, 1), date(2026, 1, 1))


def test_each_day_is_the_same_every_time_and_independent_of_its_neighbours():
    alone = demo.generate(date(2025, 7, 19), date(2025, 7, 20))
    again = demo.generate(date(2025, 7, 19), date(2025, 7, 20))
    in_range = demo.generate(date(2025, 7, 1), date(2025, 8, 1))
    pd.testing.assert_frame_equal(alone, again)
    day = in_range[in_range.ChargePeriodStart == pd.Timestamp("2025-07-19", tz="UTC")].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, day)


def test_days_differ_from_each_other():
    a = demo.generate(date(2025, 3, 4), date(2025, 3, 5))
    b = demo.generate(date(2025, 3, 5), date(2025, 3, 6))
    assert not a.EffectiveCost.equals(b.EffectiveCost)


def test_speaks_focus_1_2(year):
    assert list(year.columns) == list(FOCUS_COLUMNS)
    assert set(year.ChargeCategory) <= set(CHARGE_CATEGORIES)
    assert (year.ChargePeriodStart < year.ChargePeriodEnd).all()
    assert set(year.BillingCurrency) == {"USD"}
    with duckdb.connect() as con:  # the same staging, checks and write raw_billing runs
        migrate(con)
        loaded = load_source(con, demo.DemoSource(), Window(date(2025, 1, 1), date(2025, 2, 1), DAILY))
        assert loaded.rows == len(demo.bill(date(2025, 1, 1), date(2025, 2, 1)))  # the cloud and the AI bill
    # Account ids are strings and keep their leading zeros.
    assert "012345678901" in set(year.BillingAccountId) and "098765432109" in set(year.SubAccountId)


def test_is_a_realistic_multi_account_bill(year):
    usage = year[year.ChargeCategory == "Usage"]
    assert year.ProviderName.nunique() >= 2
    assert usage.ServiceName.nunique() >= 20
    assert year.SubAccountId.nunique() >= 4
    teams = usage.Tags.map(lambda t: json.loads(t).get("team"))
    untagged = usage.EffectiveCost[teams.isna()].sum() / usage.EffectiveCost.sum()
    assert 0.07 < untagged < 0.13


def test_has_weekly_seasonality_and_growth(year):
    usage = year[year.ChargeCategory == "Usage"]
    daily = usage.groupby(usage.ChargePeriodStart.dt.date).EffectiveCost.sum()
    weekday = pd.Series([d.weekday() for d in daily.index], index=daily.index)
    assert daily[weekday < 5].mean() > 1.08 * daily[weekday >= 5].mean()
    assert daily.iloc[-60:-10].mean() > 1.15 * daily.iloc[:50].mean()


def test_month_starts_bring_fees_and_tax_and_credits_are_negative(year):
    first = year[year.ChargePeriodStart.dt.day == 1]
    assert {"Purchase", "Tax"} <= set(first.ChargeCategory)
    assert not set(year[year.ChargePeriodStart.dt.day != 1].ChargeCategory) & {"Purchase", "Tax"}
    credits = year[year.ChargeCategory == "Credit"]
    assert len(credits) >= 12 and (credits.BilledCost < 0).all()
    # Commitment-covered usage: billed 0, cost carried by EffectiveCost; the fee itself amortized away.
    covered = year[(year.ChargeCategory == "Usage") & year.CommitmentDiscountId.notna()]
    assert len(covered) and (covered.BilledCost == 0).all() and (covered.EffectiveCost > 0).all()
    fees = year[(year.ChargeCategory == "Purchase") & year.CommitmentDiscountId.notna()]
    assert (fees.EffectiveCost == 0).all() and (fees.BilledCost > 0).all()


def test_injected_anomalies_show_in_the_bill():
    for truth in demo.injected_anomalies():
        def cost(day):
            rows = demo.generate(day, day + timedelta(days=1))
            rows = rows[(rows.SubAccountId == truth.sub_account_id) & (rows.ServiceName == truth.service_name)
                        & (rows.ChargeCategory == "Usage")]
            return rows.EffectiveCost.sum()

        during, week_before = cost(truth.start_date), cost(truth.start_date - timedelta(days=7))
        assert during > 0.8 * truth.multiplier * week_before, truth.name


def test_the_ai_bill_is_focus_with_tokens_keys_and_its_anomalies_in_it():
    """OpenAI and Anthropic rows as their admin APIs give them, one per token type and key, and each
    injected AI anomaly visible in the figures its rule reads."""
    from finops_pipeline.sources import demo_ai

    def day(d: date) -> pd.DataFrame:
        rows = demo_ai.generate(d, d + timedelta(days=1))
        return rows.assign(cost=rows.BilledCost.astype(float), tokens=rows.ConsumedQuantity.astype(float))

    rows = day(date(2025, 3, 4))
    assert set(rows.ProviderName) == {"OpenAI", "Anthropic"} and set(rows.ServiceSubcategory) == {"Generative AI"}
    assert {json.loads(t).get("team") for t in rows.Tags} == {"web", "data", "ml"}
    assert rows.ResourceId.nunique() == len(demo_ai.KEYS) and (rows.x_CostSource == "actual").all()
    pd.testing.assert_frame_equal(rows, day(date(2025, 3, 4)))

    def figures(truth, d):
        r = day(d)
        r = r[(r.SubAccountId == truth.sub_account_id) & (r.ServiceName == truth.service_name)]
        by_type = r.groupby("x_TokenType")[["tokens", "cost"]].sum()
        return {"requests": r.x_Requests.astype(float).sum(), "cost": r.cost.sum(),
                "cached_share": by_type.tokens.get("cached_input", 0.0) / by_type.tokens[["input", "cached_input"]].sum()
                if "cached_input" in by_type.index else 0.0,
                "input_price": by_type.cost["input"] / by_type.tokens["input"]}

    for truth in demo_ai.injected_ai_anomalies():
        if truth.kind == "idle_gpu":  # the GPU cluster's: see the next test
            continue
        during, before = figures(truth, truth.start_date), figures(truth, truth.start_date - timedelta(days=7))
        if truth.kind == "retry_loop":
            assert during["requests"] > 0.8 * truth.factor * before["requests"], truth.name
        elif truth.kind == "cache_collapse":
            assert during["cached_share"] < 0.1 * before["cached_share"], truth.name
        elif truth.kind == "unit_cost_rise":
            assert during["input_price"] == pytest.approx(truth.factor * before["input_price"], rel=1e-6), truth.name
        else:  # cost_per_request: more tokens in about as many requests
            per_request = (during["cost"] / during["requests"]) / (before["cost"] / before["requests"])
            assert per_request > 0.8 * truth.factor, truth.name


def test_the_gpu_cluster_is_busy_but_for_its_nightly_checkpoint_and_its_injected_idle_node():
    """The demo's Prometheus-shaped cluster: every GPU billed every hour at its price, a 20-minute
    checkpoint a night that is never a 30-minute idle streak, and the injected idle node idle from
    14:00 on its first day to the end of its last."""
    from finops_pipeline.sources import demo_ai, demo_prometheus

    truth = next(t for t in demo_ai.injected_ai_anomalies() if t.kind == "idle_gpu")
    rows = demo_prometheus.generate(truth.start_date - timedelta(days=1), truth.end_date + timedelta(days=2))
    gpus = rows[rows.ResourceType == "GPU"].assign(day=lambda f: f.ChargePeriodStart.dt.date,
                                                   hour=lambda f: f.ChargePeriodStart.dt.hour)
    assert (gpus.groupby(["day", "ResourceId"]).size() == 24).all() and gpus.ResourceId.nunique() == 10
    assert gpus.groupby("ServiceName").BilledCost.apply(lambda c: set(c.astype(float))).to_dict() == {
        "GPU NVIDIA A100-SXM4-80GB": {3.67}, "GPU NVIDIA L4": {0.80}}
    node = gpus.ResourceId.str.startswith(truth.api_key_id + "/")
    idle = gpus[gpus.x_IdleStreakMinutes >= 30]
    inside = [(truth.start_date, h) for h in range(14, 24)] + [(truth.end_date, h) for h in range(24)]
    assert node[idle.index].all() and set(zip(idle.day, idle.hour)) == set(inside)
    # The checkpoint at 02:00 on other days: idle minutes, never a streak of 30.
    checkpoint = gpus[node & (gpus.hour == 2) & (gpus.day == truth.start_date)]
    assert (checkpoint.x_IdleMinutes >= 15).all() and (checkpoint.x_IdleStreakMinutes < 30).all()
    served = rows[rows.x_TokenType == "requests"]
    assert set(served.ServiceName) == {"llama-3.1-70b-instruct", "bge-large-en"} and (served.x_CostSource == "estimated").all()
