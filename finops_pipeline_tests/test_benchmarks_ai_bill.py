"""The AI benchmark bill (``benchmarks/ai_bill.py``): what a user of ``detection_benchmark.py --bill
ai`` relies on. Pure and fast (no pipeline): a one-year bill, with and without its anomalies, is
generated once for the module."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from benchmarks import ai_bill
from finops_pipeline.detection.series import series_key
from finops_pipeline.sources.focus import FOCUS_COLUMNS

START, END, SEED = date(2024, 1, 1), date(2025, 1, 1), 5


@pytest.fixture(scope="module")
def bill():
    return ai_bill.generate(START, END, SEED)


@pytest.fixture(scope="module")
def clean():
    return ai_bill.generate(START, END, SEED, anomalies=False)


def per_key_day(items: pd.DataFrame) -> pd.DataFrame:
    """Usage cost and tokens per provider, project, model, API key and day."""
    usage = items[items.ChargeCategory == "Usage"]
    return (usage.assign(day=usage.ChargePeriodStart.dt.date, key=usage.x_ApiKeyId.fillna("-"))
            .groupby(["ProviderName", "SubAccountId", "ServiceName", "key", "day"])[["EffectiveCost", "ConsumedQuantity"]]
            .sum())


def test_a_seed_gives_one_bill(bill):
    items, labels = bill
    again_items, again_labels = ai_bill.generate(START, END, SEED)
    pd.testing.assert_frame_equal(items, again_items)
    pd.testing.assert_frame_equal(labels, again_labels)
    other_items, _ = ai_bill.generate(START, END, SEED + 1)
    assert not items["EffectiveCost"].equals(other_items["EffectiveCost"])


def test_the_bill_is_ai_spend_as_the_sources_make_it(bill):
    items, labels = bill
    assert list(items.columns) == [*FOCUS_COLUMNS, *ai_bill.X_COLUMNS]
    assert set(items.ProviderName) == {"OpenAI", "Anthropic"}
    assert set(items.ServiceSubcategory) == {"Generative AI"}
    usage = items[items.ChargeCategory == "Usage"]
    assert usage.x_ApiKeyId.dropna().nunique() >= 30
    assert usage.ServiceName.nunique() >= 8
    assert usage.SubAccountId.nunique() >= 8
    assert usage.Tags.nunique() >= 6  # teams, and untagged spend
    assert set(usage.x_TokenType) >= {"input", "cached_input", "cache_write_5m", "output"}
    assert (usage.ChargePeriodEnd - usage.ChargePeriodStart == pd.Timedelta(days=1)).all()
    assert usage.x_Requests.notna().any() and (usage.EffectiveCost >= 0).all()
    # Every day has usage from both vendors: a missing day would read as a data gap.
    assert usage.groupby("ProviderName").ChargePeriodStart.nunique().eq((END - START).days).all()
    assert list(labels.columns) == ai_bill.AI_LABEL_COLUMNS


def test_every_kind_is_labelled_after_the_warm_up_with_its_series(bill):
    _, labels = bill
    anomalies = labels[~labels.benign]
    assert set(anomalies.kind) == set(ai_bill.ANOMALY_KINDS)
    assert set(labels[labels.benign].kind) == set(ai_bill.BENIGN_KINDS)
    assert (anomalies.start >= START + timedelta(days=ai_bill.WARM_UP_DAYS)).all()
    assert anomalies.expected_impact_usd.between(*ai_bill.IMPACT_USD).all()
    assert anomalies.api_key_id.notna().all()
    for label in labels.itertuples():
        assert label.series_key == series_key("sub_account_service", label.provider, label.sub_account_id,
                                              label.service_name)
    # A flag is about a label on its key's series, its project × model and coarser; not on another key's.
    label = anomalies.iloc[0]
    assert ai_bill.covers(series_key("api_key", label.provider, label.sub_account_id, label.api_key_id), label)
    assert ai_bill.covers(label.series_key, label)
    assert ai_bill.covers(f"sub_account:{label.provider}/{label.sub_account_id}", label)
    assert not ai_bill.covers(series_key("api_key", label.provider, label.sub_account_id, "key_someone_else"), label)
    switch = anomalies[anomalies.kind == "model_switch"].iloc[0]
    assert ai_bill.covers(switch.also_series, switch)  # the model it left


def test_the_injected_rows_differ_from_the_bill_without_anomalies_only_in_the_labels_windows(bill, clean):
    (items, labels), (clean_items, clean_labels) = bill, clean
    pd.testing.assert_frame_equal(labels, clean_labels)
    both = per_key_day(items).join(per_key_day(clean_items), how="outer", rsuffix="_clean").fillna(0.0)
    changed = both[((both.EffectiveCost - both.EffectiveCost_clean).abs() > 0.01)
                   | (both.ConsumedQuantity != both.ConsumedQuantity_clean)].reset_index()
    anomalies = labels[~labels.benign]
    explained = pd.Series(False, index=changed.index)
    for label in anomalies.itertuples():
        keys = {label.api_key_id} | {k.rsplit("/", 1)[1] for k in str(label.also_series).split(";")
                                     if k.startswith("api_key:")}
        mine = ((changed.ProviderName == label.provider) & (changed.SubAccountId == label.sub_account_id)
                & changed.key.isin(keys))
        inside = (changed.day >= label.start) & (changed.day <= label.end)
        assert (mine & inside).any(), f"{label.label_id}: nothing injected in its window"
        explained |= mine & inside
        # Its excess is what it says, on its key's series (and a new project's other key).
        window = both.reset_index()
        window = window[window.key.isin(keys) & (window.day >= label.start) & (window.day <= label.end)]
        excess = (window.EffectiveCost - window.EffectiveCost_clean).sum()
        assert excess == pytest.approx(label.expected_impact_usd, rel=0.02, abs=1.0), label.label_id
    # Every injected row lies in the window of a label about its key.
    assert explained.all(), changed[~explained].head()


def test_each_kind_is_what_it_says(bill, clean):
    (items, labels), (clean_items, _) = bill, clean
    usage, clean_usage = (i[i.ChargeCategory == "Usage"].assign(day=lambda f: f.ChargePeriodStart.dt.date)
                          for i in (items, clean_items))
    for label in labels[~labels.benign].itertuples():
        key = usage[usage.x_ApiKeyId == label.api_key_id]
        before = key[(key.day < label.start) & (key.day >= label.start - timedelta(days=28))]
        during = key[(key.day >= label.start) & (key.day <= label.end)]
        if label.kind == "cache_collapse":
            def share(rows):
                tokens = rows.groupby("x_TokenType").ConsumedQuantity.sum()
                return tokens.get("cached_input", 0) / (tokens.get("cached_input", 0) + tokens.get("input", 0)
                                                         + tokens.get("cache_write_5m", 0))
            assert share(before) >= 0.4 and share(during) <= 0.1, label.label_id
        elif label.kind == "model_switch":
            project = usage[(usage.ProviderName == label.provider) & (usage.SubAccountId == label.sub_account_id)]
            assert project[project.ServiceName == label.service_name].day.min() == label.start  # a new series
            old = label.also_series.rsplit("/", 1)[1]
            dearer, cheaper = (ai_bill.price(label.provider, m)["input"] for m in (label.service_name, old))
            assert dearer >= 4 * cheaper
        elif label.kind in ("leaked_key", "new_project"):
            assert clean_usage[clean_usage.x_ApiKeyId == label.api_key_id].empty and key.day.min() == label.start
            if label.kind == "new_project":
                assert clean_usage[clean_usage.SubAccountId == label.sub_account_id].empty
            else:
                assert not clean_usage[clean_usage.SubAccountId == label.sub_account_id].empty
        elif label.kind in ("runaway_key", "cost_per_request", "unit_cost_rise"):
            clean_key = clean_usage[(clean_usage.x_ApiKeyId == label.api_key_id) & (clean_usage.day >= label.start)
                                    & (clean_usage.day <= label.end)]
            requests = during.x_Requests.sum() / clean_key.x_Requests.sum()
            tokens = during.ConsumedQuantity.sum() / clean_key.ConsumedQuantity.sum()
            cost = during.EffectiveCost.sum() / clean_key.EffectiveCost.sum()
            if label.kind == "runaway_key":
                assert requests > 1.1 and tokens == pytest.approx(requests, rel=0.01), label.label_id
            elif label.kind == "cost_per_request":
                assert requests == pytest.approx(1.0, abs=0.01) and tokens > 1.5, label.label_id
            else:
                assert tokens == pytest.approx(1.0, abs=0.01) and 1.5 <= cost <= 3.0, label.label_id
