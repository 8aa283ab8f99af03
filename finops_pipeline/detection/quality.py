"""Whether the noise model holds on this bill: per series profile, the pages the calibration
allows against the pages sent, and how many of them people answered "not an issue"."""

from __future__ import annotations

import pandas as pd

from finops_pipeline.detection.calibration import PROFILES
from finops_pipeline.grain import Grain

QUALITY_COLUMNS = ["granularity", "profile", "series", "series_months", "allowed_pages_per_series_month", "pages",
                   "pages_per_series_month", "not_an_issue"]


def detection_quality(periods: pd.DataFrame, incidents: pd.DataFrame, grain: Grain,
                      false_pages_per_year: float) -> pd.DataFrame:
    """One row per profile. ``periods``: series_key, profile, periods (how many scored periods
    each series spent in each profile); ``incidents``: severity, signal, explained_by, feedback
    and the profile of its series when it began. A page is a cost incident at warning or above
    that no other explains; the calibration allows ``false_pages_per_year`` a series each way
    (the $ floors cut that further), so more pages than allowed on a profile means either real
    anomalies or a noise model that does not hold there: the not_an_issue answers tell which."""
    months = periods.assign(series_months=periods["periods"] / (30.44 * grain.periods_per_day))
    by_profile = months.groupby("profile").agg(series=("series_key", "nunique"), series_months=("series_months", "sum"))
    paged = incidents[incidents["severity"].isin(["warning", "critical"]) & incidents["explained_by"].isna()
                      & (incidents["signal"] == "cost")]
    # Pages on a series not calibrated yet (too young) count under "uncalibrated".
    order = [p for p in (*PROFILES, "uncalibrated") if p in by_profile.index or p in set(paged["profile"])]
    by_profile = by_profile.reindex(order)
    by_profile["pages"] = paged.groupby("profile").size()
    by_profile["not_an_issue"] = paged[paged["feedback"] == "not_an_issue"].groupby("profile").size()
    out = by_profile.fillna(0).rename_axis("profile").reset_index()
    out["pages"] = out["pages"].astype(int)
    out["not_an_issue"] = out["not_an_issue"].astype(int)
    out["series"] = out["series"].astype(int)
    out["series_months"] = out["series_months"].round(1)
    out["allowed_pages_per_series_month"] = round(2 * false_pages_per_year / 12, 3)
    out["pages_per_series_month"] = (out["pages"] / out["series_months"].where(out["series_months"] > 0)).round(3)
    out["granularity"] = grain.name
    return out[QUALITY_COLUMNS]
