"""The detection maths as pure functions: forecasts without look-ahead, scoring, severity."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from finops_pipeline.detection.forecasting import Fits, ForecastConfig, build_tasks, clip_outliers, forecast, refit_anchor
from finops_pipeline.detection.scoring import (
    Thresholds,
    alert_sigmas,
    anomaly_id,
    day_of_month_factor,
    noise_sigmas,
    relative_noise,
    robust_z,
    score,
    severity,
    top_contributors,
)
from finops_pipeline.detection.series import LEVEL_COLUMNS, detect, series_key


def _weekly(days: int, start=date(2025, 1, 6), level=1000.0, seed=0) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = [start + timedelta(days=i) for i in range(days)]
    values = [level * (0.7 if d.weekday() >= 5 else 1.0) * (1 + 0.02 * rng.standard_normal()) for d in index]
    return pd.Series(values, index=index)


def test_refit_anchor_is_the_monday_on_or_before_the_day():
    for offset in range(14):
        day = date(2025, 7, 14) + timedelta(days=offset)
        anchor = refit_anchor(day, 7)
        assert anchor.weekday() == 0 and anchor <= day < anchor + timedelta(days=7)


def test_training_data_ends_before_the_refit_anchor():
    history = {"s": _weekly(120)}
    days = [date(2025, 3, 20), date(2025, 3, 21), date(2025, 4, 2)]
    tasks = build_tasks(history, days, ForecastConfig())
    assert [t.anchor for t in tasks] == [date(2025, 3, 17), date(2025, 3, 31)]
    for t in tasks:
        assert t.first_period + timedelta(days=len(t.values)) == t.anchor  # the last training day is anchor - 1


def test_no_look_ahead_changing_the_future_changes_no_forecast():
    history = _weekly(90)
    day = date(2025, 3, 20)
    tampered = history.copy()
    tampered[tampered.index >= refit_anchor(day, 7)] *= 10
    cfg = ForecastConfig(workers=1, prophet_min_daily_usd=0)  # Prophet, whatever the size
    a = forecast({"s": history}, [day], cfg)
    b = forecast({"s": tampered}, [day], cfg)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.horizon) == list(range(31))
    today = a.iloc[0]
    assert today.lower_bound <= today.expected_cost <= today.upper_bound
    assert 850 < today.expected_cost < 1150  # a Thursday of a ~1000/day series


def test_too_little_history_gives_no_forecast():
    assert forecast({"s": _weekly(20)}, [date(2025, 1, 25)], ForecastConfig(workers=1)).empty


def _with_year_ends(first: date, last: date, dip: float = 0.35, seed: int = 5) -> pd.Series:
    """$600 a weekday, 60 % of it at weekends, 5 % noise, and ``dip`` of it gone Dec 24 – Jan 1."""
    rng = np.random.default_rng(seed)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    holiday = [(d.month == 12 and d.day >= 24) or (d.month == 1 and d.day == 1) for d in days]
    return pd.Series([600.0 * (0.6 if d.weekday() >= 5 else 1.0) * (1 - dip * h) * (1 + 0.05 * rng.standard_normal())
                      for d, h in zip(days, holiday)], index=days)


@pytest.mark.parametrize("model_from_usd", [1000.0, 0.0], ids=["weekday_median", "prophet"])
def test_the_year_end_dip_is_learned_from_the_last_one_and_the_return_is_no_spike(model_from_usd):
    values = _with_year_ends(date(2024, 6, 3), date(2026, 1, 18))
    periods = [date(2025, 12, 22) + timedelta(days=i) for i in range(28)]
    config = ForecastConfig(prophet_min_daily_usd=model_from_usd)
    bands = forecast({"s": values}, periods, config)
    bands = bands[bands.horizon == 0].set_index("target_period")
    holidays = [d for d in periods if (d.month, d.day) >= (12, 24) or d == date(2026, 1, 1)]
    after = [d for d in periods if date(2026, 1, 2) <= d]

    def inside(days, band):
        return sum(band.lower_bound[d] <= values[d] <= band.upper_bound[d] for d in days)

    assert inside(holidays, bands) >= 8 and inside(after, bands) >= len(after) - 1
    assert all(abs(bands.expected_cost[d] / values[d] - 1) < 0.15 for d in holidays)
    # A series' first year-end has no last one to learn from: the same days fall below the band.
    first_year = forecast({"s": values[values.index >= date(2025, 6, 2)]}, periods, config)
    first_year = first_year[first_year.horizon == 0].set_index("target_period")
    assert inside(holidays, first_year) <= 3


def test_the_days_after_a_refit_reuse_its_fit_unless_the_data_before_it_changed():
    history = {"big": _weekly(120, level=5000.0), "small": _weekly(120, level=80.0, seed=2)}
    week = [date(2025, 1, 6) + timedelta(days=91 + i) for i in range(7)]  # a Monday and the six days after
    monday = Fits()
    forecast(history, week[:1], ForecastConfig(), fits=monday)
    assert len(monday.ran) == 1 and monday.used == set(monday.ran)  # Prophet for the big series only
    stored = {key: window for key, (_, window) in monday.ran.items()}

    thursday = Fits(stored=dict(stored))
    reused = forecast(history, week[3:4], ForecastConfig(), fits=thursday)
    assert not thursday.ran and thursday.used == set(stored)
    fitted = forecast(history, week, ForecastConfig())
    pd.testing.assert_frame_equal(reused, fitted[fitted.forecast_period == week[3]].reset_index(drop=True))

    # A restated day before the anchor is new training data: a new fit.
    restated = {**history, "big": history["big"].copy()}
    restated["big"][week[0] - timedelta(days=3)] *= 1.5
    again = Fits(stored=dict(stored))
    forecast(restated, week[3:4], ForecastConfig(), fits=again)
    assert len(again.ran) == 1 and not again.ran.keys() & stored.keys()


def test_clipping_removes_a_spike_but_accepts_a_lasting_level_shift():
    values = _weekly(140).to_numpy()
    spiked = values.copy()
    spiked[70] *= 8
    assert clip_outliers(spiked)[70] < 1.5 * values[70]
    shifted = values.copy()
    shifted[70:] *= 2
    # Once the new level is most of the weekday's recent history, it is no longer clipped.
    assert clip_outliers(shifted)[135] == pytest.approx(shifted[135])


def test_score_needs_the_band_the_dollar_floor_the_percent_floor_and_the_robust_z():
    history = np.array([1000, 990, 1010, 1005, 995, 1002, 998, 1003], dtype=float)
    t = Thresholds()
    assert score(1040, 1000, 950, 1050, history, t) is None  # inside the band
    assert score(1090, 1000, 950, 1050, history, t) is None  # outside, but under 20 %
    small = np.array([10, 10.5, 9.5, 10, 10.2, 9.8, 10, 10.1])
    assert score(60, 10, 8, 12, small, t) is None  # +500 %, but only $50
    noisy = np.array([1000, 3000, 500, 2500, 800, 2800, 600, 2000], dtype=float)
    assert score(2600, 1500, 1200, 1800, noisy, t) is None  # the series swings like that every week
    s = score(2600, 1000, 950, 1050, history, t)
    assert s.direction == "spike" and s.impact_usd == 1600 and s.deviation_pct == 160
    assert s.severity == "warning" and s.detectors == ("prophet_interval", "robust_zscore")
    assert score(2600, 1000, 950, 1050, history, t, band="weekday_median_interval").detectors[0] == "weekday_median_interval"
    drop = score(0, 1000, 950, 1050, history, t)
    assert drop.direction == "drop" and drop.deviation_pct == -100


def test_severity_rises_with_both_dollars_and_percent():
    t = Thresholds()
    assert severity(150, 30, t) == "info"
    assert severity(300, 60, t) == "warning"
    assert severity(300, 400, t) == "warning"  # big %, small $
    assert severity(1500, 30, t) == "info"  # within normal % of a large bill
    assert severity(5000, 30, t) == "warning"  # but a big enough $ overrun matters at any %
    assert severity(12000, 25, t) == "critical"
    assert severity(2500, 150, t) == "critical"
    assert severity(-2500, -100, t) == "critical"


def test_a_rise_within_the_series_own_noise_pages_no_one():
    t = Thresholds()
    # +80 % and $400 pass the warning floors; on a series whose days swing by 25 % it is 2.4 of its
    # standard deviations (log scale): a bad day, kept at info. On a 5 % series it is news.
    assert severity(400, 80, t, noise_sigmas(900, 500, 0.25)) == "info"
    assert severity(400, 80, t, noise_sigmas(900, 500, 0.05)) == "warning"
    assert severity(2500, 150, t, noise_sigmas(4167, 1667, 0.35)) == "info"  # not even a large $ overrun
    assert severity(400, 80, t) == "warning"  # noise unknown: the floors alone
    assert severity(-500, -100, t, noise_sigmas(0, 500, 0.3)) == "warning"  # a stop is never noise
    assert severity(400, 80, Thresholds(alert_noise_sigmas=0), noise_sigmas(900, 500, 0.25)) == "warning"  # off
    # The warning floor of a rule that found a cause of its own (a new SKU, a weekend left running).
    assert severity(170, 300, t) == "info"
    assert severity(170, 300, t, caused=True) == "warning"
    assert severity(120, 300, t, caused=True) == "info"


def test_a_month_start_peak_is_the_month_s_pattern_whatever_weekday_the_1st_falls_on():
    # A batch service: $1,000 on weekdays, $450 at weekends, and 1.5x on the 1st and 2nd.
    index = [date(2024, 10, 1) + timedelta(days=i) for i in range(240)]
    values = pd.Series([1000.0 * (0.45 if d.weekday() >= 5 else 1.0) * (1.5 if d.day <= 2 else 1.0) for d in index],
                       index=index)
    first = date(2025, 5, 1)  # a Thursday; the 1st of the three months before fell on a Saturday, a Saturday, a Tuesday
    assert [(first - timedelta(days=d)).weekday() for d in (30, 61, 89)] == [1, 5, 5]
    assert day_of_month_factor(values, first) == pytest.approx(1.5)
    assert day_of_month_factor(values, date(2025, 5, 14)) == pytest.approx(1.0)
    assert day_of_month_factor(values.iloc[:70], date(2024, 12, 10)) is None  # three months of history first
    t = Thresholds()
    # Measured against its usual 1st, $1,500 on a $1,000 weekday is no rise at all...
    assert severity(500, 50, t, alert_sigmas(1500, 1000, 0.05, 1.5, t)) == "info"
    assert severity(500, 50, t, alert_sigmas(1500, 1000, 0.05, None, t)) == "warning"
    # ...while three times the weekday is news on any day, and a drop is measured against the weekday.
    assert severity(2000, 200, t, alert_sigmas(3000, 1000, 0.05, 1.5, t)) == "critical"
    assert alert_sigmas(0, 1000, 0.05, 1.5, t) == -np.inf


def test_relative_noise_is_the_series_own_day_to_day_swing():
    rng = np.random.default_rng(3)
    index = [date(2025, 1, 6) + timedelta(days=i) for i in range(140)]
    weekly = np.array([0.5 if d.weekday() >= 5 else 1.0 for d in index])
    day = index[-1] + timedelta(days=1)
    for sigma in (0.04, 0.25):
        values = pd.Series(800.0 * weekly * np.exp(sigma * rng.standard_normal(len(index))), index=index)
        # The weekly pattern is not noise; the swing around it is (each residual is against a
        # median of eight, so a little wider than the noise itself).
        assert sigma * 0.8 < relative_noise(values, day) < sigma * 1.35
        spiked = values.copy()
        spiked[index[-3]] *= 6  # one anomaly in the window does not make the series noisy
        assert relative_noise(spiked, day) < sigma * 1.4
        later = values.copy()
        later[later.index >= day] *= 10
        assert relative_noise(later, day) == relative_noise(values, day)  # no look-ahead
    assert relative_noise(values.iloc[:20], index[20]) is None  # too little history


def test_detect_pages_for_a_doubling_on_a_steady_series_not_on_a_noisy_one(cost_series):
    rng = np.random.default_rng(5)
    days = [date(2025, 1, 6) + timedelta(days=i) for i in range(120)]
    day = days[-1]
    rows = []
    for service, sigma in (("steady", 0.04), ("batch", 0.3)):
        costs = 600.0 * np.exp(sigma * rng.standard_normal(len(days)))
        costs[-1] = 1200.0 if service == "steady" else 1320.0  # +100 %; +120 %, but only 2.6σ of the batch noise
        rows += [{"period": d, "provider": "AWS", "sub_account_id": "1", "sub_account_name": "a", "service_name": service,
                  "team": service, "effective_cost": c} for d, c in zip(days, costs)]
    series = cost_series(pd.DataFrame(rows))
    forecasts = pd.DataFrame([{"target_period": day, "series_key": f"sub_account_service:AWS/1/{service}", "model": "m",
                               "expected_cost": 600.0, "lower_bound": 400.0, "upper_bound": 800.0}
                              for service in ("steady", "batch")])
    # A robust z against eight same weekdays is loose enough for both to be anomalies at all...
    found = detect(series, forecasts, [day], Thresholds(min_robust_z=2.0)).set_index("service_name")
    assert set(found.index) == {"steady", "batch"} and (found.impact_usd > 250).all() and (found.deviation_pct > 50).all()
    # ...but only the one that stands out from its own noise pages anyone.
    assert found.severity.to_dict() == {"steady": "warning", "batch": "info"}

    assert robust_z(5, np.array([1.0, 2.0])) is None
    assert robust_z(1000, np.full(8, 1000.0)) == 0
    assert robust_z(1100, np.full(8, 1000.0)) == pytest.approx(5.0)  # MAD floored at 2 % of the median


def test_anomaly_ids_are_stable_and_distinct():
    a = anomaly_id("total", date(2025, 7, 19))
    assert a == anomaly_id("total", date(2025, 7, 19))
    assert a != anomaly_id("total", date(2025, 7, 20)) != anomaly_id("x", date(2025, 7, 19))


def test_top_contributors_rank_by_size_of_change():
    current = pd.Series({"i-a": 900.0, "i-b": 100.0, "i-c": 50.0})
    baseline = pd.Series({"i-a": 100.0, "i-b": 100.0, "i-d": 300.0})
    top = top_contributors(current, baseline, n=2, dimension="resource")
    assert [c["name"] for c in top] == ["i-a", "i-d"]
    assert top[0] == {"dimension": "resource", "name": "i-a", "actual": 900.0, "expected": 100.0, "delta": 800.0}
    assert top[1]["delta"] == -300.0


def _usage(days: int) -> pd.DataFrame:
    rows = []
    for i, (day, cost) in enumerate(_weekly(days).items()):
        rows.append({"period": day, "provider": "AWS", "sub_account_id": "0123", "sub_account_name": "prod",
                     "service_name": "EC2", "team": "web", "effective_cost": cost * 0.9})
        rows.append({"period": day, "provider": "AWS", "sub_account_id": "0123", "sub_account_name": "prod",
                     "service_name": "EC2", "team": "untagged", "effective_cost": cost * 0.1})
    return pd.DataFrame(rows)


def test_detect_scores_each_series_and_flags_a_spike_and_a_stopped_service(cost_series):
    usage = _usage(70)
    spike_day, last_day = date(2025, 3, 13), date(2025, 3, 16)
    usage.loc[usage.period == spike_day, "effective_cost"] *= 4
    usage = usage[usage.period != last_day]  # EC2 stops reporting on the last day...
    s3 = usage.drop_duplicates("period").assign(service_name="S3", effective_cost=5.0)
    s3 = pd.concat([s3, s3.tail(1).assign(period=last_day)])  # ...while the rest of the bill goes on
    series = cost_series(pd.concat([usage, s3], ignore_index=True))
    assert set(series.series_key) == {
        "total", "provider:AWS", "sub_account:AWS/0123", "service:AWS/EC2", "service:AWS/S3", "team:web", "team:untagged",
        "sub_account_service:AWS/0123/EC2", "sub_account_service:AWS/0123/S3"}
    fine = series[series.series_level == "sub_account_service"]
    assert set(fine.team) == {"web"}  # the team with most of the spend
    per_level = series[series.period == spike_day].groupby("series_level").cost.sum()
    assert per_level.round(2).nunique() == 1  # every level adds up to the same bill
    forecasts = pd.DataFrame(
        [{"target_period": d, "series_key": k, "expected_cost": 1000.0, "lower_bound": 900.0, "upper_bound": 1100.0}
         for d in (spike_day, last_day) for k in ("total", "sub_account_service:AWS/0123/EC2")]
    )
    found = detect(series, forecasts, [spike_day, last_day])
    assert len(found) == 4
    spikes = found[found.direction == "spike"]
    assert set(spikes.period_start.dt.date) == {spike_day} and (spikes.actual_cost > 3500).all()
    drops = found[found.direction == "drop"]
    assert set(drops.period_start.dt.date) == {last_day}
    assert drops.set_index("series_key").actual_cost.to_dict() == {"total": 5.0, "sub_account_service:AWS/0123/EC2": 0.0}
    # The total moved because EC2 did: the alert belongs to EC2.
    by_key = found.set_index(["series_key", found.period_start.dt.date])
    ec2 = by_key.loc[("sub_account_service:AWS/0123/EC2", spike_day)]
    assert by_key.loc[("total", spike_day), "explained_by"] == ec2.anomaly_id and pd.isna(ec2.explained_by)


def _flagged(days: list[tuple[str, str, float, str]], key: str = "s", expected: float = 1000.0) -> pd.DataFrame:
    """Anomaly rows (day, direction, impact, severity) of one daily series expected to cost ``expected`` a day."""
    return pd.DataFrame([{"anomaly_id": f"{key}-{d}", "series_key": key, "granularity": "daily", "direction": way,
                          "period_start": pd.Timestamp(d, tz="UTC"), "impact_usd": impact, "severity": severity,
                          "expected_cost": expected,
                          "series_level": "sub_account_service", "provider": "AWS", "sub_account_id": "1",
                          "sub_account_name": "prod", "service_name": "EC2", "team": "web"}
                         for d, way, impact, severity in days])


def test_a_level_shift_is_one_incident_and_a_break_starts_another():
    from finops_pipeline.detection.incidents import assign_incidents, summarize

    shift = [(f"2025-10-{d:02d}", "spike", 300.0 + 10 * d, "warning") for d in range(6, 20)]
    later = [("2025-10-22", "spike", 500.0, "warning"), ("2025-10-23", "drop", -400.0, "warning")]
    frame = _flagged(shift + later)
    frame = pd.concat([frame, _flagged([("2025-10-07", "spike", 2500.0, "critical")], key="other")], ignore_index=True)
    frame["incident_id"] = assign_incidents(frame.sample(frac=1, random_state=1)).reindex(frame.index)
    assert frame.groupby("incident_id").size().to_dict() == {
        "s-2025-10-06": 14, "s-2025-10-22": 1, "s-2025-10-23": 1, "other-2025-10-07": 1}

    last_scored = pd.Series({"s": pd.Timestamp("2025-10-23", tz="UTC"), "other": pd.Timestamp("2025-10-30", tz="UTC")})
    incidents = summarize(frame, last_scored).set_index("incident_id")
    gpu = incidents.loc["s-2025-10-06"]
    assert (gpu.periods, gpu.total_excess_usd, gpu.status) == (14, sum(300.0 + 10 * d for d in range(6, 20)), "resolved")
    assert gpu.peak_period == pd.Timestamp("2025-10-19", tz="UTC") and gpu.latest_period == gpu.peak_period
    assert incidents.loc["s-2025-10-23", "status"] == "open"  # nothing scored after it yet
    assert incidents.loc["other-2025-10-07", "severity"] == "critical"


def test_a_ci_fleet_left_on_for_two_nights_is_one_hourly_incident():
    """A CI fleet left running bills its busy rate through two nights; from 08:00 to 19:00 that is
    its usual cost, not an anomaly. Its two nights are one incident (hours up to half a day
    apart); a spike two days later is another."""
    from finops_pipeline.detection.incidents import assign_incidents

    nights = [h for day in (20, 21) for h in pd.date_range(f"2025-03-{day} 19:00", periods=13, freq="h")]
    later = [pd.Timestamp("2025-03-24 15:00")]
    frame = _flagged([(str(h), "spike", 20.0, "info") for h in nights + later]).assign(granularity="hourly")
    frame["incident_id"] = assign_incidents(frame)
    assert frame.groupby("incident_id").size().to_dict() == {"s-2025-03-20 19:00:00": 26, "s-2025-03-24 15:00:00": 1}
    # Days are consecutive or not: a day between two anomalous days splits them.
    days = _flagged([("2025-10-06", "spike", 300.0, "warning"), ("2025-10-08", "spike", 300.0, "warning")])
    assert assign_incidents(days).nunique() == 2


def test_a_sustained_change_pages_on_the_day_its_total_crosses_the_floor():
    """Each day of a +60 % shift worth $60 is info on its own; the incident pages (warning) once it
    has lasted three days and cost $250 in all. Two such days, or a drop of a third, stay info."""
    from finops_pipeline.detection.incidents import assign_incidents, summarize

    def severity_after(days: int, impact: float = 60.0, expected: float = 100.0, way: str = "spike") -> str:
        frame = _flagged([(f"2025-10-{d:02d}", way, impact, "info") for d in range(6, 6 + days)], expected=expected)
        frame["incident_id"] = assign_incidents(frame)
        return summarize(frame, pd.Series(dtype="object")).iloc[0].severity

    assert [severity_after(n) for n in (2, 3, 4, 5)] == ["info", "info", "info", "warning"]  # $240 after 4 days, $300 after 5
    assert severity_after(14, impact=160.0, expected=150.0) == "critical"  # $2,240 over 14 days, +107 %
    assert severity_after(9, impact=-30.0, way="drop") == "info"  # a third less: thinner, not stopped
    assert severity_after(9, impact=-98.0, way="drop") == "warning"  # 98 % gone for 9 days: $882


def test_a_new_series_without_calibrated_bounds_pages_on_its_total_too():
    """A new project spending $200 a day: each day info, its span's usualness unknown (no
    calibrated bounds yet, stored as NULL). Unknown is not usual: after five days ($1,000) the
    incident pages on its total, as any other would."""
    from finops_pipeline.detection.incidents import assign_incidents, summarize

    frame = _flagged([(f"2025-10-{d:02d}", "spike", 200.0, "info") for d in range(6, 11)], expected=0.0)
    frame["span_usual"] = pd.array([pd.NA] * len(frame), dtype="boolean")  # as read back from DuckDB
    frame["incident_id"] = assign_incidents(frame)
    assert summarize(frame, pd.Series(dtype="object")).iloc[0].severity == "warning"
    frame["span_usual"] = pd.array([True] * len(frame), dtype="boolean")  # known to be the series' habit
    assert summarize(frame, pd.Series(dtype="object")).iloc[0].severity == "info"


def test_a_level_marked_expected_becomes_the_baseline_at_the_next_refit():
    history = _weekly(119)  # 2025-01-06 .. 2025-05-04: 1,000 a day, less at weekends
    shift_from = date(2025, 4, 21)
    history[history.index >= shift_from] *= 2  # a new cluster, two weeks before the refit
    day = date(2025, 5, 6)
    cfg = ForecastConfig(workers=1, horizon_days=0)
    clipped = forecast({"s": history}, [day], cfg).iloc[0]
    accepted = forecast({"s": history}, [day], cfg, accepted={"s": shift_from}).iloc[0]
    assert clipped.expected_cost < 1500  # two weeks of a new level are clipped as outliers...
    assert 1700 < accepted.expected_cost < 2300  # ...unless a person said the level is expected
    assert build_tasks({"s": history}, [day], cfg, {"s": shift_from})[0].keep_from == (shift_from - date(2025, 1, 6)).days


def test_a_new_service_with_real_spend_is_flagged_before_it_has_a_forecast(cost_series):
    usage = _usage(70)  # EC2 since 2025-01-06
    launch = date(2025, 3, 10)
    new = [{"period": launch + timedelta(days=i), "provider": "AWS", "sub_account_id": "0123", "sub_account_name": "prod",
            "service_name": name, "team": "ml", "effective_cost": cost}
           for i in range(3) for name, cost in (("SageMaker", 640.0), ("Glue", 12.0))]
    series = cost_series(pd.concat([usage, pd.DataFrame(new)], ignore_index=True))
    found = detect(series, pd.DataFrame(columns=["target_period", "series_key", "expected_cost", "lower_bound",
                                                 "upper_bound"]), [launch, launch + timedelta(days=1)])
    # The new team and service are the same spend: explained by the sub-account × service series.
    assert set(found.series_key) == {"team:ml", "service:AWS/SageMaker", "sub_account_service:AWS/0123/SageMaker"}
    fine = found[found.series_level == "sub_account_service"]
    assert found[found.explained_by.notna()].explained_by.isin(fine.anomaly_id).all() and len(found) == 6
    found = fine
    assert list(found.service_name) == ["SageMaker", "SageMaker"]  # Glue spends under the $ floor
    first = found.iloc[0]
    assert (first.detectors, first.expected_cost, first.impact_usd, first.severity) == ("new_series", 0.0, 640.0, "warning")
    # On a bill that only just began, every series is new: none is flagged as such.
    assert detect(cost_series(pd.DataFrame(new)), pd.DataFrame(columns=["target_period", "series_key", "expected_cost",
                                                                        "lower_bound", "upper_bound"]), [launch]).empty


def test_a_service_adopted_over_weeks_is_not_a_new_service_alert(cost_series):
    """Athena adopted gradually: $20 a day growing by a tenth a day, past the $100 floor on its
    third week. It is a baseline in the making, not a new service arriving with its spend."""
    usage = _usage(70)
    launch = date(2025, 3, 10)
    adoption = [{"period": launch + timedelta(days=i), "provider": "AWS", "sub_account_id": "0123",
                 "sub_account_name": "prod", "service_name": "Athena", "team": "data", "effective_cost": 20.0 * 1.1 ** i}
                for i in range(27)]
    series = cost_series(pd.concat([usage, pd.DataFrame(adoption)], ignore_index=True))
    days = [launch + timedelta(days=i) for i in range(27)]
    assert adoption[-1]["effective_cost"] > 200  # spending well past the floor by then
    no_forecasts = pd.DataFrame(columns=["target_period", "series_key", "expected_cost", "lower_bound", "upper_bound"])
    assert detect(series, no_forecasts, days).empty


def test_a_day_without_any_line_item_is_a_late_bill_not_every_series_dropping(cost_series):
    usage = _usage(70)
    late = date(2025, 3, 16)
    series = cost_series(usage[usage.period != late])
    forecasts = pd.DataFrame([{"target_period": late, "series_key": k, "expected_cost": 1000.0, "lower_bound": 900.0,
                               "upper_bound": 1100.0} for k in ("total", "sub_account_service:AWS/0123/EC2")])
    assert detect(series, forecasts, [late]).empty
    usage.loc[usage.period == late, "effective_cost"] *= 4  # once it arrives, the day is scored as usual
    assert len(detect(cost_series(usage), forecasts, [late])) == 2


def test_the_series_view_names_every_series_as_detection_does(cost_series):
    """dbt's daily_cost_series keys each series as ``series.series_key`` does, and every level
    adds up to the same bill each day."""
    usage = _usage(14)
    usage = pd.concat([usage, usage.assign(provider="Microsoft", sub_account_id="sub-1", sub_account_name="dev",
                                           service_name="Virtual Machines", team="data")], ignore_index=True)
    series = cost_series(usage)
    for row in series.drop_duplicates("series_key").itertuples():
        parts = [getattr(row, c) for c in LEVEL_COLUMNS[row.series_level]]
        assert row.series_key == series_key(row.series_level, *parts)
    assert series.groupby(["period", "series_level"]).cost.sum().round(4).groupby("period").nunique().eq(1).all()
    assert len(series.series_key.unique()) == 12


def test_an_account_whose_rows_stop_arriving_is_a_data_gap_told_once_for_the_account(cost_series):
    """prod's line items stop for three days while staging's keep arriving: a data gap on the
    account (its service's gap is explained by it), a warning from its second day, not a cost
    drop; the service across both accounts still has rows and only cost less."""
    from finops_pipeline.detection.incidents import assign_incidents, summarize

    usage = _usage(70)
    gap = [date(2025, 3, 14), date(2025, 3, 15), date(2025, 3, 16)]
    staging = usage.drop_duplicates("period").assign(sub_account_id="0456", sub_account_name="staging", effective_cost=300.0)
    series = cost_series(pd.concat([usage[~usage.period.isin(gap)], staging], ignore_index=True))
    days = sorted(series.period.unique())
    history = series.groupby("series_key").cost.median()
    forecasts = pd.DataFrame([{"target_period": d, "series_key": k, "expected_cost": float(history[k]),
                               "lower_bound": 0.8 * history[k], "upper_bound": 1.2 * history[k]}
                              for d in days[-5:] for k in history.index])
    found = detect(series, forecasts, days[-5:])
    gaps = found[found.detectors.str.contains("no_line_items")]
    assert set(gaps.series_key) == {"sub_account:AWS/0123", "sub_account_service:AWS/0123/EC2"}
    assert set(gaps.period_start.dt.date) == set(gap)
    by_day = gaps.assign(day=gaps.period_start.dt.date)
    account = by_day[by_day.series_level == "sub_account"].set_index("day")
    service = by_day[by_day.series_level == "sub_account_service"].set_index("day")
    assert (service.explained_by == account.anomaly_id).all() and account.explained_by.isna().all()
    found["incident_id"] = assign_incidents(found)
    first_day = summarize(found[found.period_start.dt.date <= gap[0]], pd.Series(dtype="object"))
    all_days = summarize(found, pd.Series(dtype="object"))
    for table, severity in ((first_day, "info"), (all_days, "warning")):
        row = table.set_index("series_key").loc["sub_account:AWS/0123"]
        assert (row.signal, row.severity) == ("data_gap", severity)
    assert set(all_days.loc[all_days.signal == "data_gap", "series_key"]) == set(gaps.series_key)


def test_a_rotated_api_key_going_quiet_is_not_a_data_gap():
    """key_old stops on March 14 (rotated: key_new carries its traffic from that day); the project
    and provider keep their rows. No data gap: a key is a credential, not a delivery."""
    days = [date(2025, 3, 1) + timedelta(days=i) for i in range(20)]
    switch = date(2025, 3, 14)
    rows = []
    for d in days:
        for level, key, api_key in (("total", "total", None), ("provider", "provider:OpenAI", None),
                                    ("api_key", "api_key:OpenAI/proj/key_old", "key_old"),
                                    ("api_key", "api_key:OpenAI/proj/key_new", "key_new")):
            if (api_key == "key_old" and d >= switch) or (api_key == "key_new" and d < switch):
                continue
            rows.append({"series_key": key, "series_level": level, "provider": "OpenAI" if level != "total" else None,
                         "sub_account_id": "proj" if api_key else None, "sub_account_name": "proj" if api_key else None,
                         "service_name": None, "team": "web" if api_key else None, "api_key_id": api_key,
                         "period": d, "cost": 500.0})
    series = pd.DataFrame(rows)
    forecasts = pd.DataFrame([{"target_period": d, "series_key": k, "expected_cost": 500.0, "lower_bound": 400.0,
                               "upper_bound": 600.0} for d in days[-5:] for k in ("total", "api_key:OpenAI/proj/key_old")])
    found = detect(series, forecasts, days[-5:])
    assert not found.detectors.str.contains("no_line_items").any()
    assert set(found.series_key) <= {"api_key:OpenAI/proj/key_old"}  # a drop to 0, at most: never a gap


def test_an_hourly_series_missing_a_few_hours_is_not_paged_as_a_data_gap():
    """Hourly feeds miss an hour or three (a late export, a missed scrape): that stays info; six
    hours without rows while the rest of the bill arrives is a data gap that pages."""
    from finops_pipeline.detection.incidents import summarize
    from finops_pipeline.detection.scoring import Thresholds

    start = pd.Timestamp("2025-04-07 11:00", tz="UTC")

    def gap(hours: int) -> pd.DataFrame:
        return pd.DataFrame([{
            "anomaly_id": f"a{h}", "incident_id": "gap", "series_key": "sub_account_service:AWS/0123/EC2",
            "series_level": "sub_account_service", "granularity": "hourly", "provider": "AWS", "sub_account_id": "0123",
            "sub_account_name": "prod", "service_name": "EC2", "team": "web", "direction": "drop",
            "period_start": start + pd.Timedelta(hours=h), "actual_cost": 0.0, "expected_cost": 40.0,
            "impact_usd": -40.0, "severity": "info", "detectors": "no_line_items", "explained_by": None, "status": None,
        } for h in range(hours)])

    hourly = Thresholds.for_granularity("hourly")
    for hours, severity in ((3, "info"), (6, "warning")):
        row = summarize(gap(hours), pd.Series(dtype="object"), hourly).iloc[0]
        assert (row.signal, row.severity) == ("data_gap", severity)
    # Days: the second day without rows pages.
    assert summarize(gap(2), pd.Series(dtype="object"), Thresholds.for_granularity("daily")).iloc[0].severity == "warning"


def test_one_event_in_two_dimensions_is_one_alert():
    """One instance, tagged with a new team value, spiked by $840: the team's spike is the
    sub-account × service spike's line items, so the team's anomaly is explained by it (a team
    does not contain an account's service, so containment alone missed it)."""
    from finops_pipeline.detection.series import explained_across

    day = pd.Timestamp("2025-07-19", tz="UTC")
    rows = pd.DataFrame([
        {"anomaly_id": "team", "series_level": "team", "period_start": day, "direction": "spike", "impact_usd": 840.0,
         "sub_account_name": None, "service_name": None, "detectors": "new_series", "explained_by": None},
        {"anomaly_id": "ec2", "series_level": "sub_account_service", "period_start": day, "direction": "spike",
         "impact_usd": 845.0, "sub_account_name": "prod", "service_name": "EC2", "detectors": "prophet_interval",
         "explained_by": None},
    ])

    def causes(delta):
        return [{"sub_account / service": [{"name": "prod / EC2", "actual": delta, "expected": 0.0, "delta": delta}]}, {}]

    assert explained_across(rows, causes(835.0)) == ["ec2", None]
    # As detection hands it over: a text column, whose missing values are NaN, not None.
    as_text = rows.assign(explained_by=pd.Series([None, "other"], dtype="str"))
    assert explained_across(as_text, causes(835.0)) == ["ec2", "other"]
    # A team spike mostly elsewhere is its own event.
    assert explained_across(rows, causes(300.0)) == [None, None]
    # ...and so is one on another day or the other way.
    assert explained_across(rows.assign(direction=["drop", "spike"]), causes(835.0)) == [None, None]
