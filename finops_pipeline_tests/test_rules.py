"""The rules for what a forecast band misses, and the cheap model the long tail is forecast with."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from finops_pipeline.detection import rules
from finops_pipeline.detection.forecasting import PROPHET, WEEKDAY_MEDIAN, ForecastConfig, build_tasks, forecast
from finops_pipeline.detection.scoring import Thresholds, robust_z, same_weekday_history
from finops_pipeline.detection.series import contains, detect

START = date(2025, 1, 6)  # a Monday


def _series(days: int, level: float, weekend: float = 1.0, noise: float = 0.02, seed: int = 0, name: str = "s") -> pd.Series:
    rng = np.random.default_rng(seed)
    index = [START + timedelta(days=i) for i in range(days)]
    values = [level * (weekend if d.weekday() >= 5 else 1.0) * (1 + noise * rng.standard_normal()) for d in index]
    return pd.Series(values, index=index, name=name)


def test_a_slow_ramp_is_caught_against_the_level_before_the_climb():
    values = _series(120, 1000.0)
    ramp_from = START + timedelta(days=90)
    for i, day in enumerate(d for d in values.index if d >= ramp_from):
        values[day] *= 1.03 ** (i + 1)  # storage growing 3 % a day
    flagged = [d for d in values.index if d >= ramp_from and rules.slow_ramp(rules.Costs(values), d, Thresholds())]
    assert flagged and flagged[0] <= ramp_from + timedelta(days=12)
    hit = rules.slow_ramp(rules.Costs(values), flagged[0], Thresholds())
    assert 950 < hit.expected < 1050 and hit.actual > 1.2 * hit.expected
    # Steady organic growth (40 % a year) never looks like a ramp...
    steady = _series(120, 1000.0) * np.array([1.4 ** (i / 365) for i in range(120)])
    assert not any(rules.slow_ramp(rules.Costs(steady), d, Thresholds()) for d in steady.index[63:])


def test_a_new_service_being_adopted_is_not_a_ramp():
    # ...nor does a service that has grown since its first day (2 % a day, to several hundred $).
    adoption = pd.Series([20.0 * 1.03 ** i for i in range(120)], index=[START + timedelta(days=i) for i in range(120)])
    assert adoption.iloc[-1] > 500
    assert not any(rules.slow_ramp(rules.Costs(adoption), d, Thresholds()) for d in adoption.index[63:])


def test_a_step_that_each_day_hides_in_the_noise_is_a_level_shift_within_a_week():
    # A batch service swinging ±15 % a day steps up 40 % and stays there: no single day is far
    # out of line with its weekday, the week as a whole is.
    values = _series(160, 1000.0, weekend=0.7, noise=0.15, seed=3)
    step = START + timedelta(days=120)
    values[values.index >= step] *= 1.4
    costs = rules.Costs(values)
    found = [d for d in values.index[84:] if rules.level_shift(costs, d, Thresholds())]
    assert found and step + timedelta(days=4) <= found[0] <= step + timedelta(days=7)
    assert all(d >= step for d in found)  # nothing in the 36 noisy days scored before it
    hit = rules.level_shift(costs, found[0], Thresholds())
    assert hit.actual > hit.expected and 600 < hit.expected < 1150
    first_week = [d for d in values.index if step <= d < step + timedelta(days=7)]
    day_by_day = [robust_z(values[d], same_weekday_history(costs, d)) for d in first_week]
    assert sum(z >= Thresholds().min_robust_z for z in day_by_day) <= 1

    # One expensive day is a spike, not a new level; and a service growing since its first day
    # was never steady enough to shift.
    spiky = _series(160, 1000.0, weekend=0.7, noise=0.05, seed=4)
    spiky[step] *= 3
    assert not any(rules.level_shift(rules.Costs(spiky), d, Thresholds()) for d in spiky.index[84:])
    adoption = pd.Series([50.0 * 1.02 ** i for i in range(160)], index=[START + timedelta(days=i) for i in range(160)])
    assert not any(rules.level_shift(rules.Costs(adoption), d, Thresholds()) for d in adoption.index[84:])


def test_a_weekend_billed_like_a_weekday():
    values = _series(70, 800.0, weekend=0.25)
    saturday = next(d for d in values.index[40:] if d.weekday() == 5)
    assert rules.weekend_like_weekday(rules.Costs(values), saturday, Thresholds()) is None
    values[saturday] = 790.0  # the dev cluster was not shut down
    hit = rules.weekend_like_weekday(rules.Costs(values), saturday, Thresholds())
    assert hit and 150 < hit.expected < 250 and hit.actual == 790.0
    # A series that costs the same every day has no weekend to break.
    flat = _series(70, 800.0)
    assert rules.weekend_like_weekday(rules.Costs(flat), saturday, Thresholds()) is None


def test_a_weekend_left_running_pages_from_a_lower_floor_than_a_value_out_of_its_band(cost_series):
    # A small dev cluster: $230 on weekdays, $55 at weekends. A weekend billed like a weekday is
    # $175 over, under the $250 warning floor, yet the rule saw its cause: it pages.
    values = _series(70, 230.0, weekend=0.24, noise=0.03)
    saturday = next(d for d in values.index[56:] if d.weekday() == 5)
    values[saturday] = 230.0
    usage = pd.DataFrame([{"period": d, "provider": "AWS", "sub_account_id": "1", "sub_account_name": "dev",
                           "service_name": "EKS", "team": "web", "effective_cost": c} for d, c in values.items()])
    empty = pd.DataFrame(columns=["target_period", "series_key", "expected_cost", "lower_bound", "upper_bound"])
    found = detect(cost_series(usage), empty, [saturday])
    fine = found[found.series_level == "sub_account_service"].iloc[0]
    assert fine.detectors == "weekend_like_weekday" and 150 < fine.impact_usd < 250 and fine.severity == "warning"
    # The same excess without a cause of its own (a spike a band caught) stays info.
    assert detect(cost_series(usage), empty, [saturday], Thresholds(caused_warning_impact_usd=250.0)).severity.eq("info").all()


def test_a_new_sku_with_real_spend_but_not_one_that_replaces_another():
    history = {"k": _series(70, 1000.0)}
    day = START + timedelta(days=65)
    history["k"][day] += 400.0
    skus = pd.DataFrame([{"series_key": "k", "period": day, "sku_id": "p5.48xlarge", "cost": 400.0}])
    hit = next(rules.new_skus(skus, history, {("k", day): 1000.0}, Thresholds()))
    assert (hit.rule, hit.note) == ("new_sku", "p5.48xlarge") and 350 < hit.actual - hit.expected <= 400
    history["k"][day] -= 400.0  # the same spend moved to a new generation: nothing new
    assert list(rules.new_skus(skus, history, {("k", day): 1000.0}, Thresholds())) == []
    # A series without a forecast yet is new, and so is each of its SKUs: new_series judges it.
    history["k"][day] += 400.0
    assert list(rules.new_skus(skus, history, {}, Thresholds())) == []


def test_a_change_that_cancels_out_in_the_sum_is_caught_at_the_finer_level(cost_series):
    days = [START + timedelta(days=i) for i in range(70)]
    usage = pd.DataFrame(
        [{"period": d, "provider": "AWS", "sub_account_id": acct, "sub_account_name": acct, "service_name": "EC2",
          "team": "web", "effective_cost": 1000.0 * (1 + 0.01 * ((i * 7 + j) % 3))}
         for i, d in enumerate(days) for j, acct in enumerate(("a", "b"))]
    )
    moved = days[-1]
    usage.loc[(usage.period == moved) & (usage.sub_account_id == "a"), "effective_cost"] += 600  # one account up...
    usage.loc[(usage.period == moved) & (usage.sub_account_id == "b"), "effective_cost"] -= 600  # ...the other down
    series = cost_series(usage)
    predicted = forecast({k: g.set_index("period").cost for k, g in series.groupby("series_key")}, [moved],
                         ForecastConfig(workers=1, horizon_days=0))
    found = detect(series, predicted, [moved])
    assert set(found.series_key) == {"sub_account_service:AWS/a/EC2", "sub_account_service:AWS/b/EC2",
                                     "sub_account:AWS/a", "sub_account:AWS/b"}
    assert set(found[found.explained_by.isna()].series_level) == {"sub_account_service"}


def test_which_series_contain_which():
    fine = {"series_level": "sub_account_service", "provider": "AWS", "sub_account_id": "1", "service_name": "EC2", "team": "ml"}
    assert contains({"series_level": "total"}, fine)
    assert contains({"series_level": "provider", "provider": "AWS"}, fine)
    assert not contains({"series_level": "provider", "provider": "Microsoft"}, fine)
    assert contains({"series_level": "team", "team": "ml"}, fine)
    assert contains({"series_level": "service", "provider": "AWS", "service_name": "EC2"}, fine)
    assert not contains({"series_level": "sub_account", "provider": "AWS", "sub_account_id": "2"}, fine)
    assert contains({"series_level": "provider", "provider": "AWS"}, {"series_level": "sub_account", "provider": "AWS",
                                                                       "sub_account_id": "1"})
    assert not contains(fine, fine) and not contains(fine, {"series_level": "total"})


def test_prophet_goes_to_the_series_that_carry_the_money():
    history = {f"small-{i}": _series(100, 20.0 + i, seed=i) for i in range(5)}
    history |= {"big": _series(100, 5000.0), "bigger": _series(100, 9000.0)}
    day = START + timedelta(days=95)
    models = {t.series_key: t.model for t in build_tasks(history, [day], ForecastConfig())}
    assert models == {"big": PROPHET, "bigger": PROPHET} | {f"small-{i}": WEEKDAY_MEDIAN for i in range(5)}
    capped = {t.series_key: t.model for t in build_tasks(history, [day], ForecastConfig(prophet_max_series=1))}
    assert capped["bigger"] == PROPHET and capped["big"] == WEEKDAY_MEDIAN


def test_the_weekday_median_band_holds_a_weekly_pattern_without_look_ahead():
    values = _series(100, 300.0, weekend=0.3, noise=0.05)
    days = [START + timedelta(days=d) for d in range(91, 98)]  # a Monday to Sunday
    cfg = ForecastConfig(workers=1)
    predicted = forecast({"s": values}, days, cfg)
    assert set(predicted.model) == {WEEKDAY_MEDIAN} and set(predicted.horizon) == {0}
    for row in predicted.itertuples():
        level = 300.0 * (0.3 if row.target_period.weekday() >= 5 else 1.0)
        assert 0.9 * level < row.expected_cost < 1.1 * level
        assert row.lower_bound < values[row.target_period] < row.upper_bound
    tampered = values.copy()
    tampered[tampered.index >= days[0]] *= 5
    pd.testing.assert_frame_equal(predicted, forecast({"s": tampered}, days, cfg))
