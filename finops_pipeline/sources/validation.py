"""Checks every batch of line items passes before it is written: a bad batch fails whole, with a
message that names the source, the column and how many rows are wrong."""

from __future__ import annotations

import pandas as pd

from finops_pipeline.sources.focus import CHARGE_CATEGORIES

REQUIRED = ("BillingAccountId", "ChargePeriodStart", "ChargePeriodEnd", "BilledCost", "EffectiveCost",
            "BillingCurrency", "ChargeCategory", "ServiceName", "ProviderName")


class BillingDataError(ValueError):
    pass


def validate_line_items(frame: pd.DataFrame, origin: str) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BillingDataError(f"{origin}: missing mandatory FOCUS column(s) {', '.join(missing)} ({len(frame)} rows)")
    problems = []
    for column in ("BilledCost", "EffectiveCost"):
        bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
        if bad.any():
            problems.append(f"column {column}: {int(bad.sum())} row(s) not numeric")
    for column in ("BillingAccountId", "BillingCurrency", "ChargePeriodStart", "ServiceName"):
        bad = frame[column].isna()
        if bad.any():
            problems.append(f"column {column}: {int(bad.sum())} row(s) empty")
    bad = ~frame["ChargeCategory"].isin(CHARGE_CATEGORIES)
    if bad.any():
        problems.append(f"column ChargeCategory: {int(bad.sum())} row(s) not one of {', '.join(CHARGE_CATEGORIES)}")
    bad = pd.to_datetime(frame["ChargePeriodStart"]) >= pd.to_datetime(frame["ChargePeriodEnd"])
    if bad.any():
        problems.append(f"column ChargePeriodEnd: {int(bad.sum())} row(s) not after ChargePeriodStart")
    currencies = frame.groupby("BillingAccountId")["BillingCurrency"].nunique()
    mixed = currencies[currencies > 1]
    if len(mixed):
        problems.append(f"column BillingCurrency: billing account(s) {', '.join(mixed.index)} mix currencies")
    if problems:
        raise BillingDataError(f"{origin}: {len(frame)} rows rejected, nothing written; " + "; ".join(problems))
