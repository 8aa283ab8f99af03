"""The AI benchmark bill (``benchmarks/ai_bill.py``): what a user of ``detection_benchmark.py --bill
ai`` relies on. Pure (no pipeline): a one-year bill, with and without its anomalies, is generated
once for the module (about 20 s each, most of it the GPU estate's rows through
``PrometheusSource.rows``)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pandas as pd
import pytest

from benchmarks import ai_bill
from finops_pipeline.detection.series import series_key
from finops_pipeline.sources.focus import FOCUS_COLUMNS

START, END, SEED = date(2024, 1, 1), date(2025, 1, 1), 5
AI = ("OpenAI", "Anthropic")
IDLE_KINDS = ("idle_gpu", "idle_below_floor")
# The API bill of SEED over [START, END) as ai_bill.py made it before the GPU estate (067fe35): its
# rows, cost per provider and labels. The GPU estate must leave it as it was.
API_BILL_BEFORE_GPUS = {"rows": 35156, "cost": {"Anthropic": 594957.80, "OpenAI": 550918.45}, "labels": 31}


@pytest.fixture(scope="module")
def bill():
    return ai_bill.generate(START, END, SEED)


@pytest.fixture(scope="module")
def clean():
    return ai_bill.generate(START, END, SEED, anomalies=False)


def api(frame: pd.DataFrame) -> pd.DataFrame:
    """The API bill's rows (or labels): OpenAI and Anthropic."""
    column = "ProviderName" if "ProviderName" in frame else "provider"
    return frame[frame[column].isin(AI)].reset_index(drop=True)


def gpu_rows(items: pd.DataFrame) -> pd.DataFrame:
    """The GPU estate's rows, with their series key, node and day."""
    rows = items[items.ProviderName == ai_bill.GPU_PROVIDER]
    return rows.assign(series_key=[series_key("sub_account_service", *k) for k in
                                    zip(rows.ProviderName, rows.SubAccountId, rows.ServiceName)],
                       node=rows.ResourceId.str.split("/").str[0], day=rows.ChargePeriodStart.dt.date)


def in_labels(rows: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """Whether each GPU row lies in the window of one of ``labels`` on its series."""
    inside = pd.Series(False, index=rows.index)
    for label in labels.itertuples():
        inside |= (rows.series_key == label.series_key) & (rows.day >= label.start) & (rows.day <= label.end)
    return inside


def per_key_day(items: pd.DataFrame) -> pd.DataFrame:
    """The API bill's usage cost and tokens per provider, project, model, API key and day."""
    items = api(items)
    usage = items[items.ChargeCategory == "Usage"]
    return (usage.assign(day=usage.ChargePeriodStart.dt.date, key=usage.x_ApiKeyId.fillna("-"))
            .groupby(["ProviderName", "SubAccountId", "ServiceName", "key", "day"])[["EffectiveCost", "ConsumedQuantity"]]
            .sum())


def test_a_seed_gives_one_bill():
    # Two months: the GPU estate's rows take most of a generation's time.
    end = START + timedelta(days=60)
    items, labels = ai_bill.generate(START, end, SEED)
    again_items, again_labels = ai_bill.generate(START, end, SEED)
    pd.testing.assert_frame_equal(items, again_items)
    pd.testing.assert_frame_equal(labels, again_labels)
    other_items, _ = ai_bill.generate(START, end, SEED + 1)
    for provider in (*AI, ai_bill.GPU_PROVIDER):
        mine, other = (i.loc[i.ProviderName == provider, "EffectiveCost"].reset_index(drop=True)
                       for i in (items, other_items))
        assert not mine.equals(other), provider


def test_the_gpu_estate_leaves_the_api_bill_as_it_was(bill):
    items, labels = bill
    alone_items, alone_labels = ai_bill.generate(START, END, SEED, gpus=False)
    assert set(alone_items.ProviderName) == set(AI)
    pd.testing.assert_frame_equal(api(items), alone_items)
    # The API bill's labels come first, unchanged (ids included); the GPU estate's follow.
    pd.testing.assert_frame_equal(labels.iloc[:len(alone_labels)], alone_labels)
    assert (labels.iloc[len(alone_labels):].provider == ai_bill.GPU_PROVIDER).all()
    # As it was before the GPU estate was added.
    assert len(alone_items) == API_BILL_BEFORE_GPUS["rows"] and len(alone_labels) == API_BILL_BEFORE_GPUS["labels"]
    cost = alone_items.groupby("ProviderName").EffectiveCost.sum().round(2).to_dict()
    assert cost == pytest.approx(API_BILL_BEFORE_GPUS["cost"], abs=0.01)


def test_the_bill_is_ai_spend_as_the_sources_make_it(bill):
    items, labels = bill
    assert list(items.columns) == [*FOCUS_COLUMNS, *ai_bill.X_COLUMNS]
    assert set(items.ProviderName) == {*AI, ai_bill.GPU_PROVIDER}
    items = api(items)
    assert set(items.ServiceSubcategory) == {"Generative AI"}
    usage = items[items.ChargeCategory == "Usage"]
    assert usage.x_ApiKeyId.dropna().nunique() >= 30
    assert usage.ServiceName.nunique() >= 8
    assert usage.SubAccountId.nunique() >= 8
    assert usage.Tags.nunique() >= 6  # teams, and untagged spend
    assert set(usage.x_TokenType) >= {"input", "cached_input", "cache_write_5m", "output"}
    assert (usage.ChargePeriodEnd - usage.ChargePeriodStart == pd.Timedelta(days=1)).all()
    assert usage.x_Requests.notna().any() and (usage.EffectiveCost >= 0).all()
    assert usage[list(ai_bill.GPU_X_COLUMNS)].isna().all().all()
    # Every day has usage from both vendors: a missing day would read as a data gap.
    assert usage.groupby("ProviderName").ChargePeriodStart.nunique().eq((END - START).days).all()
    assert list(labels.columns) == ai_bill.AI_LABEL_COLUMNS


def test_the_gpu_estate_is_what_prometheus_gives(bill):
    items, _ = bill
    gpus = gpu_rows(items)
    assert set(gpus.SubAccountId) == set(ai_bill.CLUSTERS)
    assert set(gpus.ServiceName) == {f"GPU {t}" for t in ai_bill.GPU_PRICES}
    assert (gpus.ResourceType == "GPU").all() and (gpus.SkuMeter == "GPU Hours").all()
    assert (gpus.ChargePeriodEnd - gpus.ChargePeriodStart == pd.Timedelta(hours=1)).all()
    assert 20 <= gpus.ResourceId.nunique() <= 40
    assert gpus.groupby("ChargePeriodStart").ResourceId.nunique().max() <= 38
    # Priced by the minutes reported, at the GPU type's price.
    price = gpus.ServiceName.str.removeprefix("GPU ").map({t: float(p) for t, p in ai_bill.GPU_PRICES.items()})
    assert (gpus.EffectiveCost - price * gpus.ConsumedQuantity).abs().max() <= 0.005
    # The GPU teams are their own: the API bill's team series stay as they were.
    gpu_teams = set(gpus.Tags.map(lambda t: json.loads(t)["team"]))
    assert gpu_teams == {spec.team for spec in ai_bill.NODES} and not gpu_teams & set(ai_bill.TEAMS.values())
    # Batch nodes are released between jobs (no rows); exporter gaps are absent minutes, unbilled.
    hours = (END - START).days * 24
    batch = gpus[gpus.node == "west-batch-a100-1"]
    assert 0.1 * hours < batch.ChargePeriodStart.nunique() < 0.6 * hours
    steady = gpus[gpus.node == "east-inf-a100-1"]
    assert steady.ChargePeriodStart.nunique() == hours
    gaps = steady[steady.x_AbsentMinutes > 0]
    assert len(gaps) >= 10 and (gaps.ConsumedQuantity * 60 + gaps.x_AbsentMinutes <= 60).all()


def test_every_kind_is_labelled_after_the_warm_up_with_its_series(bill):
    _, labels = bill
    anomalies = labels[~labels.benign]
    assert set(anomalies.kind) == {*ai_bill.ANOMALY_KINDS, *ai_bill.GPU_ANOMALY_KINDS}
    assert set(labels[labels.benign].kind) == {*ai_bill.BENIGN_KINDS, *ai_bill.GPU_BENIGN_KINDS}
    assert (anomalies.start >= START + timedelta(days=ai_bill.WARM_UP_DAYS)).all()
    assert api(anomalies).expected_impact_usd.between(*ai_bill.IMPACT_USD).all()
    assert api(anomalies).api_key_id.notna().all()
    assert labels.loc[labels.provider == ai_bill.GPU_PROVIDER, "api_key_id"].isna().all()
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
    anomalies = api(labels[~labels.benign])
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


def test_idle_labels_lie_where_the_rows_show_idle_streaks(bill):
    """Each idle label's series shows idle streaks of 30 minutes or more (the idle rule's) from its
    first day to its last, worth about what it says; none outside an idle label."""
    items, labels = bill
    gpus = gpu_rows(items)
    idle = labels[labels.kind.isin(IDLE_KINDS)]
    assert (~idle.benign).sum() >= 8 and idle.benign.sum() >= 1
    assert idle.groupby("kind").sub_account_id.nunique()["idle_gpu"] == len(ai_bill.CLUSTERS)
    assert idle.loc[~idle.benign].service_name.nunique() == len(ai_bill.GPU_PRICES)
    streaks = gpus[gpus.x_IdleStreakMinutes >= 30]
    for label in idle.itertuples():
        mine = streaks[(streaks.series_key == label.series_key) & (streaks.day >= label.start)
                       & (streaks.day <= label.end)]
        assert mine.day.min() == label.start and mine.day.max() == label.end, label.label_id
        price = float(ai_bill.GPU_PRICES[label.service_name.removeprefix("GPU ")])
        rate = price * mine.ResourceId.nunique()  # the idle GPUs' $ an hour
        assert (rate < ai_bill.PAGE_FLOOR_USD_AN_HOUR) == label.benign, label.label_id
        # What the idle rule counts (the idle minutes of hours whose streak reaches 30) is the
        # label's impact within the idle GPUs' first and last hours (a streak not yet at 30, a
        # checkpoint dip in the hour the idle time ends, a gap).
        counted = float((mine.x_IdleMinutes / 60 * price).sum())
        assert counted == pytest.approx(label.expected_impact_usd, abs=2 * rate), label.label_id
    assert in_labels(streaks, idle).all(), streaks[~in_labels(streaks, idle)].head()


def test_benign_idle_minutes_never_reach_the_idle_streak(bill, clean):
    """Checkpoint dips, a replica's restart, a batch job's loading: idle minutes, never a streak of
    30. The bill without its anomalies has no streak of 30 at all."""
    (items, labels), (clean_items, _) = bill, clean
    gpus = gpu_rows(items)
    benign = gpus[~in_labels(gpus, labels[labels.kind.isin(IDLE_KINDS)])]
    for habit in ("training", "inference", "batch"):
        nodes = {spec.name for spec in ai_bill.NODES if spec.habit == habit}
        rows = benign[benign.node.isin(nodes)]
        assert (rows.x_IdleMinutes > 0).sum() >= 100, habit  # they happen
        assert rows.x_IdleStreakMinutes.max() < 30, habit
    training = benign[benign.node.str.contains("-trn-")]
    assert (training.x_IdleMinutes > 0).mean() > 0.1  # a checkpoint every 2–6 hours
    assert gpu_rows(clean_items).x_IdleStreakMinutes.max() < 30


def test_the_injected_gpu_rows_differ_from_the_bill_without_anomalies_only_in_idle_windows(bill, clean):
    (items, labels), (clean_items, _) = bill, clean
    columns = ["ResourceId", "ChargePeriodStart"]
    both = gpu_rows(items).merge(gpu_rows(clean_items), on=columns, how="outer", suffixes=("", "_clean"),
                                 indicator=True)
    for column in ("series_key", "day"):
        both[column] = both[column].fillna(both[f"{column}_clean"])
    changed = both[(both._merge != "both") | (both.x_IdleMinutes != both.x_IdleMinutes_clean)
                   | ((both.EffectiveCost - both.EffectiveCost_clean).abs() > 0.005)]
    idle = labels[labels.kind.isin(IDLE_KINDS)]
    assert in_labels(changed, idle).all(), changed[~in_labels(changed, idle)][columns].head()
    for label in idle.itertuples():
        assert in_labels(changed, idle[idle.label_id == label.label_id]).any(), label.label_id
