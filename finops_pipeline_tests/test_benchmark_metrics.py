"""The detection benchmark's own parts: the labelled bill, the seed detectors and the metrics.

Pure and fast (no pipeline): a nine-month bill is generated once for the module.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from benchmarks import detection_metrics as metrics
from benchmarks import bursty_bill, labelled_bill, seed_detectors
from finops_pipeline.sources import demo
from finops_pipeline.sources.focus import CHARGE_CATEGORIES, FOCUS_COLUMNS

START, END = date(2024, 1, 1), date(2024, 10, 1)


@pytest.fixture(scope="module")
def bill():
    return labelled_bill.generate(START, END, seed=3)


def daily_usage(items: pd.DataFrame) -> pd.DataFrame:
    usage = items[items.ChargeCategory == "Usage"]
    keys = [labelled_bill.series_key(*k) for k in zip(usage.ProviderName, usage.SubAccountId, usage.ServiceName)]
    return (usage.assign(series_key=keys, day=usage.ChargePeriodStart.dt.date)
            .groupby(["series_key", "day"], as_index=False)["EffectiveCost"].sum().rename(columns={"EffectiveCost": "cost"}))


def test_the_bill_is_deterministic_and_shaped_like_the_demo(bill):
    items, labels = bill
    again_items, again_labels = labelled_bill.generate(START, END, seed=3)
    pd.testing.assert_frame_equal(items, again_items)
    pd.testing.assert_frame_equal(labels, again_labels)

    assert list(items.dtypes.items()) == list(demo.generate(START, START + timedelta(days=1)).dtypes.items())
    assert list(items.columns) == list(FOCUS_COLUMNS)
    assert set(items.ChargeCategory) == set(CHARGE_CATEGORIES)
    assert set(items.ProviderName) == {"AWS", "Microsoft Azure"}
    assert daily_usage(items).series_key.nunique() >= 110
    usage = items[items.ChargeCategory == "Usage"]
    assert (usage.ChargePeriodStart == usage.ChargePeriodStart.dt.normalize()).all()
    assert (usage.ChargePeriodEnd - usage.ChargePeriodStart == pd.Timedelta(days=1)).all()


def test_labelled_anomalies_are_in_the_data(bill):
    items, labels = bill
    costs = daily_usage(items).set_index(["series_key", "day"])["cost"]
    anomalies = labels[~labels.benign]
    assert set(anomalies.kind) == set(labelled_bill.ANOMALY_KINDS)
    assert (anomalies.start >= START + timedelta(days=labelled_bill.WARM_UP_DAYS)).all()
    days = (pd.to_datetime(anomalies.end) - pd.to_datetime(anomalies.start)).dt.days + 1
    assert (anomalies.expected_impact_usd.abs() / days >= labelled_bill.MIN_EXCESS_USD).all()

    for spike in anomalies[anomalies.kind == "one_day_spike"].itertuples():
        series = costs.loc[spike.series_key]
        before = series[(series.index >= spike.start - timedelta(days=28)) & (series.index < spike.start)]
        assert series[spike.start] - before.median() > 0.5 * spike.expected_impact_usd
    for drop in anomalies[anomalies.kind == "drop_to_zero"].itertuples():
        series = costs.loc[drop.series_key]
        assert not ((series.index >= drop.start) & (series.index <= drop.end)).any()
        assert drop.expected_impact_usd < 0
    for new in anomalies[anomalies.kind == "new_service"].itertuples():
        series = costs.loc[new.series_key]
        assert series.index.min() == new.start and series[new.start] > 0


def test_seed_detectors_flag_a_spike_and_not_a_flat_series():
    days = pd.date_range("2025-01-01", periods=40, freq="D")
    flat = pd.Series(200.0, index=days)
    spike = flat.copy()
    spike.iloc[30] = 600.0
    for name, detector in seed_detectors.SEED_DETECTORS.items():
        assert not detector(flat).any(), name
        assert detector(spike).iloc[30], name
        assert not detector(spike).iloc[:30].any(), name
    # The z-score alone flags a fall; nothing flags without history.
    fall = flat.copy()
    fall.iloc[30] = 20.0
    assert seed_detectors.zscore_7d(fall).iloc[30] and not seed_detectors.dod_25(fall).iloc[30]
    assert not seed_detectors.any_of_three(spike.iloc[:3]).any()


def test_flag_all_fills_missing_days_with_zero():
    costs = pd.DataFrame({"series_key": ["a"] * 30 + ["b"] * 10,
                          "day": [date(2025, 1, 1) + timedelta(days=i) for i in range(30)]
                          + [date(2025, 1, 21) + timedelta(days=i) for i in range(10)],
                          "cost": [100.0] * 29 + [500.0] + [50.0] * 10})
    flags = seed_detectors.flag_all(costs)
    assert set(flags.detector) == set(seed_detectors.SEED_DETECTORS)
    assert set(flags[(flags.detector == "dod_25") & (flags.series_key == "a")].day) == {date(2025, 1, 30)}
    # b's first day follows days of 0: a new series is a rise for the moving averages.
    assert date(2025, 1, 21) in set(flags[(flags.detector == "ma_3_vs_14") & (flags.series_key == "b")].day)
    assert not ((flags.detector == "dod_25") & (flags.series_key == "b")).any()


LABELS = pd.DataFrame([
    {"label_id": "x-1", "kind": "one_day_spike", "benign": False, "start": date(2025, 3, 10), "end": date(2025, 3, 10),
     "provider": "AWS", "sub_account_id": "111", "service_name": "EC2", "team": "web",
     "series_key": "sub_account_service:AWS/111/EC2"},
    {"label_id": "x-2", "kind": "level_shift", "benign": False, "start": date(2025, 5, 1), "end": date(2025, 5, 14),
     "provider": "Microsoft Azure", "sub_account_id": "abc", "service_name": "A/B Service", "team": "untagged",
     "series_key": "sub_account_service:Microsoft Azure/abc/A/B Service"},
    {"label_id": "x-3", "kind": "recovery", "benign": True, "start": date(2025, 6, 1), "end": date(2025, 6, 7),
     "provider": "Microsoft Azure", "sub_account_id": "abc", "service_name": "A/B Service", "team": "untagged",
     "series_key": "sub_account_service:Microsoft Azure/abc/A/B Service"},
])


def windows(labels: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"series_key": r.series_key, "day": pd.date_range(r.start, r.end)})
                      for r in labels.itertuples()], ignore_index=True)


def test_flags_on_the_label_windows_score_perfectly():
    result = metrics.evaluate(windows(LABELS[~LABELS.benign]), LABELS, 10, date(2025, 1, 1), date(2025, 12, 31))
    assert (result["recall"], result["precision"], result["false_incidents"]) == (1.0, 1.0, 0)
    assert result["incidents"] == 2 and result["median_delay_days"] == 0.0
    assert result["recall_by_kind"] == {"level_shift": 1.0, "one_day_spike": 1.0}


def test_a_flag_far_from_any_label_is_a_false_alarm():
    flags = pd.concat([
        windows(LABELS.iloc[[1]]).iloc[3:5],  # caught on its 4th day
        pd.DataFrame({"series_key": ["sub_account_service:AWS/111/EC2"] * 2, "day": [date(2025, 8, 1), date(2025, 8, 2)]}),
        pd.DataFrame({"series_key": ["sub_account_service:Microsoft Azure/abc/A/B Service"], "day": [date(2025, 6, 2)]}),
    ])
    result = metrics.evaluate(flags, LABELS, n_series=10, start=date(2025, 1, 1), end=date(2025, 12, 31))
    assert result["recall"] == 0.5 and result["recall_by_kind"]["one_day_spike"] == 0.0
    assert (result["incidents"], result["false_incidents"], result["false_on_benign"]) == (3, 2, 1)
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["false_alarms_per_series_month"] == pytest.approx(2 / (10 * 365 / (365.25 / 12)))
    assert result["median_delay_days"] == 3.0
    # Within a week after the window the shift is still news, not a false alarm.
    late = pd.DataFrame({"series_key": ["sub_account_service:AWS/111/EC2"], "day": [date(2025, 3, 16)]})
    assert metrics.evaluate(late, LABELS, 10, date(2025, 1, 1), date(2025, 12, 31))["false_incidents"] == 0
    table = metrics.format_table({"seed": result})
    assert table.splitlines()[2].startswith("| seed | 50% | 33% |")


def test_hourly_flags_score_by_the_hour():
    label = LABELS.iloc[[0]].assign(start=pd.Timestamp("2025-03-10 14:00"), end=pd.Timestamp("2025-03-10 17:00"))
    ec2 = "sub_account_service:AWS/111/EC2"
    hours = pd.to_datetime(["2025-03-10 16:00", "2025-03-10 17:00",  # caught two hours in
                            "2025-03-20 01:00", "2025-03-20 03:00"])  # two separate false pages
    flags = pd.DataFrame({"series_key": ec2, "day": hours.tz_localize("UTC")})  # as the pipeline stores them
    result = metrics.evaluate(flags, label, n_series=1, start=date(2025, 3, 1), end=date(2025, 3, 31), step="h")
    assert (result["recall"], result["median_delay_days"]) == (1.0, 2.0)
    assert (result["incidents"], result["false_incidents"]) == (3, 2)
    assert result["false_alarms_per_series_month"] == pytest.approx(2 / (31 / (365.25 / 12)))
    # With the pipeline's hourly reach (anomalies up to 12 hours apart are one incident), one false page.
    reached = metrics.evaluate(flags, label, 1, date(2025, 3, 1), date(2025, 3, 31), step="h", reach=12)
    assert (reached["incidents"], reached["false_incidents"]) == (2, 1)
    # Scored by the day, the same flags are two incidents, the false one a day long.
    by_day = metrics.evaluate(flags, label, n_series=1, start=date(2025, 3, 1), end=date(2025, 3, 31))
    assert (by_day["incidents"], by_day["false_incidents"]) == (2, 1)


@pytest.mark.parametrize(("key", "matches"), [
    ("total", [True, True]),
    ("provider:AWS", [True, False]),
    ("sub_account:AWS/111", [True, False]),
    ("sub_account:AWS/222", [False, False]),
    ("service:Microsoft Azure/A/B Service", [False, True]),
    ("team:web", [True, False]),
    ("team:untagged", [False, True]),
    ("sub_account_service:Microsoft Azure/abc/A/B Service", [False, True]),
])
def test_coarse_keys_match_the_fine_labels_they_contain(key, matches):
    assert [metrics.covers(key, label) for _, label in LABELS.iloc[:2].iterrows()] == matches


@pytest.fixture(scope="module")
def bursty():
    return bursty_bill.generate(date(2024, 1, 1), date(2025, 1, 1), seed=5)


def test_the_second_bill_is_deterministic_and_labels_what_it_holds(bursty):
    items, labels = bursty
    again, labels_again = bursty_bill.generate(date(2024, 1, 1), date(2025, 1, 1), seed=5)
    pd.testing.assert_frame_equal(items, again)
    pd.testing.assert_frame_equal(labels, labels_again)
    assert list(items.columns) == list(FOCUS_COLUMNS)
    text = items.select_dtypes(include="object").astype(str)
    assert not text.isin(["nan", "None", "NaT"]).any().any()  # a missing value is null, not text
    anomalies = labels[~labels.benign]
    assert anomalies.expected_impact_usd.abs().between(*bursty_bill.IMPACT_USD).all()
    assert set(anomalies.kind) >= {"spike", "sustained_shift", "compounding_ramp", "partial_drop", "lost_export"}
    usage = daily_usage(items)
    for label in anomalies.itertuples():
        window = usage[(usage.day >= label.start) & (usage.day <= label.end)]
        rows = window[window.series_key == label.series_key]
        if label.kind == "lost_export":  # the series is missing while the rest of the bill arrives
            assert rows.empty and window.day.nunique() == (label.end - label.start).days + 1
        else:  # what it billed is its normal cost plus the labelled excess (minus, for a drop)
            days = (label.end - label.start).days + 1
            expected = label.baseline_usd_per_day * days + label.expected_impact_usd
            assert rows.cost.sum() == pytest.approx(expected, rel=1e-3, abs=1.0), label.label_id


def test_an_incident_paged_on_its_total_counts_from_the_day_it_paged():
    """Three days of $100 over a $200 series are `info` each; the incident pages on the third,
    when its total passes $250: that is the day its delay and its catch count from."""
    from benchmarks.detection_benchmark import paged
    from finops_pipeline.detection.incidents import assign_incidents

    days = [date(2025, 7, d) for d in (1, 2, 3, 4)]
    rows = pd.DataFrame([{"anomaly_id": f"s-{d}", "series_key": "s", "granularity": "daily", "direction": "spike",
                          "period_start": pd.Timestamp(d, tz="UTC"), "impact_usd": 100.0, "severity": "info",
                          "expected_cost": 200.0, "series_level": "sub_account_service", "provider": "AWS",
                          "sub_account_id": "1", "sub_account_name": "prod", "service_name": "EC2", "team": "web"}
                         for d in days])
    rows["incident_id"] = assign_incidents(rows)
    assert list(paged(rows)["period_start"].dt.date) == days[2:]
    # One that pages on its first day counts from it; one that never pages, not at all.
    first = rows.assign(severity=["warning", "info", "info", "info"])
    assert list(paged(first)["period_start"].dt.date) == days
    assert paged(rows.iloc[:2]).empty
