"""Alert bounds calibrated on each series' own errors: a bursty service's ordinary days do not
page, a steady one's unusual day does, and jobs that run every day are not a job series' habit."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from finops_pipeline.detection import rules
from finops_pipeline.detection.calibration import calibrate, tail_quantile
from finops_pipeline.detection.scoring import Thresholds

START = date(2023, 1, 2)
DAYS = 3 * 365


def _days(n: int = DAYS) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def _steady(rng, level=400.0) -> np.ndarray:
    return level * np.exp(0.05 * rng.standard_normal(DAYS))


def _bursty(rng, level=400.0) -> np.ndarray:  # heavy tails: log-Student-t with 3 degrees of freedom
    return level * np.exp(0.35 * rng.standard_t(3, DAYS))


def _jobs(rng, level=20.0, job=600.0, share=0.25) -> np.ndarray:  # near idle, a training run on a quarter of days
    runs = rng.random(DAYS) < share
    return np.where(runs, job * np.exp(0.2 * rng.standard_normal(DAYS)), level * (1 + 0.02 * rng.standard_normal(DAYS)))


def _calibrated(values: np.ndarray, expected: float | np.ndarray, periods=None) -> pd.DataFrame:
    days = _days(len(values))
    history = {"s": pd.Series(values, index=days)}
    forecasts = pd.DataFrame({"series_key": "s", "target_period": days,
                              "expected_cost": np.broadcast_to(expected, len(days)).astype(float)})
    return calibrate(history, forecasts, periods or days[200:]).set_index("target_period")


# Out of ~900 ordinary days (2.5 years), how many may leave the bounds. The setting is half a
# false page a series a year each way (about 2.5 here). Log-Student-t noise has a heavier tail
# than a tail fitted to its 55 largest errors shows: about 1.1 a year each way, where a
# log-normal band at 3 robust σ leaves ~40 (see docs/detection.md).
@pytest.mark.parametrize("make, allowed", [(_steady, 4), (_bursty, 10), (_jobs, 4)], ids=["steady", "bursty", "intermittent"])
def test_out_of_sample_pages_stay_near_the_setting(make, allowed):
    """The default is half a false page a series a year in each direction: over 2.5 years of a
    series' ordinary days, few leave the bounds, whatever its profile."""
    rng = np.random.default_rng(3)
    values = make(rng)
    expected = float(np.median(values))  # the model: the series' typical day
    bounds = _calibrated(values, expected)
    actual = pd.Series(values, index=_days()).reindex(bounds.index)
    outside = ((actual > bounds.alert_upper) | (actual < bounds.alert_lower)).sum()
    assert bounds.alert_upper.notna().all()
    assert outside <= allowed, f"{outside} of {len(bounds)} ordinary days outside the bounds"


def test_a_steady_series_pages_on_a_day_a_bursty_one_has_every_month():
    rng = np.random.default_rng(5)
    steady = _calibrated(_steady(rng), 400.0).iloc[-1]
    bursty = _calibrated(_bursty(rng), 400.0).iloc[-1]
    assert steady.alert_upper < 1.5 * 400 < 2.5 * 400 < bursty.alert_upper
    assert steady.profile == "steady" and bursty.profile == "bursty"


def test_a_past_incident_does_not_pass_for_noise():
    """Three weeks at twice the cost, two months back, leave a steady series' bound where it was."""
    rng = np.random.default_rng(7)
    values = _steady(rng)
    clean = _calibrated(values, 400.0).iloc[-1].alert_upper
    values[DAYS - 80:DAYS - 59] *= 2.0
    assert _calibrated(values, 400.0).iloc[-1].alert_upper < 1.1 * clean


def test_jobs_every_day_are_not_a_job_series_habit():
    rng = np.random.default_rng(11)
    values = _jobs(rng)
    days = _days()
    last = days[-1]
    # Its ordinary weeks: a job on some days, never an unusual span.
    bounds = _calibrated(values, 20.0, periods=days[-120:])
    assert bounds.profile.iloc[-1] == "intermittent"

    def hits(v: np.ndarray, bounds: pd.DataFrame) -> list:
        costs = rules.Costs(pd.Series(v, index=days, name="s"))
        found = []
        for day, b in bounds.iterrows():
            hit = rules.unusual_span(costs, day, timedelta(days=1), 7, 20.0, (0.0, 30.0), b.span_expected,
                                     (b.span_alert_lower, b.span_alert_upper), Thresholds(),
                                     (b.active_cost, b.span_active_limit), b.profile)
            found += [day] if hit else []
        return found

    assert hits(values, bounds) == []
    # The same job every day of the last ten: the span is unusual from its fifth day or so.
    values = values.copy()
    values[-10:] = 600.0
    bounds = _calibrated(values, 20.0, periods=days[-10:])
    found = hits(values, bounds)
    assert found and found[0] <= last - timedelta(days=3) and found[-1] == last
    # Each of those days is an ordinary job day on its own.
    assert (bounds.alert_upper > 600.0).all()


def test_a_job_three_times_its_usual_size_is_not_a_job_series_habit():
    rng = np.random.default_rng(13)
    values = _jobs(rng)
    bounds = _calibrated(values, 20.0).iloc[-1]
    usual_job = float(np.median(values[values > 100]))
    assert bounds.profile == "intermittent"
    # Jobs that vary by 20 % (σ of the log): an exponential tail over their ~45 sizes puts the
    # bound near 2.8 times the median job.
    assert bounds.job_upper < 3 * usual_job
    assert bounds.job_upper > 1.5 * usual_job  # an ordinary job of a little more is not news
    # No one tail fits idle days and jobs: the series' upper bound is its job bound.
    assert bounds.alert_upper == bounds.job_upper
    assert np.isnan(_calibrated(_steady(rng), 400.0).iloc[-1].job_upper)


def test_tail_quantile_needs_twenty_errors_and_extrapolates_the_exponential_tail():
    rng = np.random.default_rng(1)
    sample = rng.exponential(1.0, size=(1, 5000))
    # P(X > q) = 0.001 for a unit exponential: q = ln(1000) = 6.9.
    assert tail_quantile(sample, 0.001)[0] == pytest.approx(np.log(1000), abs=0.4)
    assert np.isnan(tail_quantile(sample[:, :19], 0.001)[0])


def test_detection_quality_sets_pages_per_profile_against_what_the_calibration_allows():
    from finops_pipeline.detection.quality import detection_quality
    from finops_pipeline.grain import DAILY

    periods = pd.DataFrame({"series_key": ["a", "b", "b", "c"], "profile": ["steady", "bursty", "steady", "bursty"],
                            "periods": [365, 200, 165, 365]})
    incidents = pd.DataFrame({
        "severity": ["warning", "critical", "info", "warning", "warning", "warning"],
        "signal": ["cost", "cost", "cost", "data_gap", "cost", "cost"],
        "explained_by": [None, None, None, None, "x", None],
        "feedback": [None, "not_an_issue", None, None, None, None],
        "profile": ["bursty", "bursty", "steady", "steady", "steady", "uncalibrated"],
    })
    table = detection_quality(periods, incidents, DAILY, 0.5).set_index("profile")
    assert list(table.index) == ["steady", "bursty", "uncalibrated"]  # in the order of PROFILES
    assert table.loc["bursty", "series"] == 2 and table.loc["bursty", "series_months"] == pytest.approx(18.6, abs=0.1)
    # Info, data gaps and explained incidents are no pages.
    assert (table.loc["bursty", "pages"], table.loc["bursty", "not_an_issue"]) == (2, 1)
    assert table.loc["steady", "pages"] == 0
    # A page on a series too young for bounds is counted, under "uncalibrated".
    assert (table.loc["uncalibrated", "pages"], table.loc["uncalibrated", "series"]) == (1, 0)
    assert table.loc["steady", "allowed_pages_per_series_month"] == pytest.approx(1 / 12, abs=0.001)
