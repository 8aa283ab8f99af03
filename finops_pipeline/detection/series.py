"""The cost series the pipeline forecasts and scores, and the detection pass over them.

Only Usage charges, on EffectiveCost, make up a series: Purchase, Tax, Credit and Adjustment rows
follow invoices and contracts, not consumption, and must neither raise nor hide an anomaly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from finops_pipeline.detection import rules
from finops_pipeline.grain import DAILY, Grain
from finops_pipeline.detection.ai_rules import ai_hits, idle_gpus, runaway_key, usage_note
from finops_pipeline.detection.scoring import (
    AI_RULES,
    CAUSED_RULES,
    SEVERITIES,
    WASTE_RULES,
    Score,
    Thresholds,
    anomaly_id,
    deviation_pct,
    alert_sigmas,
    day_of_month_factor,
    relative_noise,
    same_day_of_month_history,
    same_weekday_history,
    score,
    severity,
    within_calibration,
)
from finops_pipeline.detection.calibration import Calibration

# Coarse to fine. A change that cancels out in a sum (one account up, another down) is still seen
# at the finer levels; one that spreads thinly over many services is seen at the coarser ones. An
# AI API key is a series of its own: a retry loop or a leaked key is one key's spend.
SERIES_LEVELS = ("total", "provider", "sub_account", "service", "team", "sub_account_service", "api_key")

# The columns that name a series at each level (team: the tag; untagged spend is its own team).
LEVEL_COLUMNS = {
    "total": (),
    "provider": ("provider",),
    "sub_account": ("provider", "sub_account_id"),
    "service": ("provider", "service_name"),
    "team": ("team",),
    "sub_account_service": ("provider", "sub_account_id", "service_name"),
    "api_key": ("provider", "sub_account_id", "api_key_id"),
}
# Levels whose series belong to the team that carries most of their spend (not a team tag's sum).
OWNED_LEVELS = ("sub_account_service", "api_key")

META_COLUMNS = ["series_key", "series_level", "provider", "sub_account_id", "sub_account_name", "service_name", "team",
                "api_key_id"]


def series_key(level: str, *parts: str | None) -> str:
    """``total``, ``provider:AWS``, ``sub_account:AWS/1234``, ``service:AWS/Amazon EC2``,
    ``team:ml``, ``sub_account_service:AWS/1234/Amazon EC2``, ``api_key:OpenAI/proj_abc/key_1``: the
    parts are ``LEVEL_COLUMNS[level]``."""
    if level == "total":
        return "total"
    return f"{level}:{'/'.join(str(p) for p in parts)}"


def contains(coarse: pd.Series | dict, fine: pd.Series | dict) -> bool:
    """Whether series ``coarse`` holds the spend of a different series ``fine`` (each with
    series_level and its level's columns). A sub-account × service or API key series counts as
    its owning team's: the team that carries most of its spend."""
    if coarse["series_level"] == fine["series_level"]:
        return False
    fine_columns = set(LEVEL_COLUMNS[fine["series_level"]])
    if fine["series_level"] in OWNED_LEVELS:
        fine_columns.add("team")
    columns = LEVEL_COLUMNS[coarse["series_level"]]
    return set(columns) <= fine_columns and all(coarse[c] == fine[c] for c in columns)


def billed_periods(series: pd.DataFrame) -> set:
    """The periods that have any usage line item."""
    return set(series.loc[series["series_key"] == "total", "period"])


def history_by_series(series: pd.DataFrame) -> dict[str, pd.Series]:
    return {key: g.set_index("period")["cost"].astype(float) for key, g in series.groupby("series_key", sort=True)}


def series_metadata(series: pd.DataFrame) -> pd.DataFrame:
    return series[META_COLUMNS].drop_duplicates("series_key").set_index("series_key")


def detect(
    series: pd.DataFrame,
    forecasts: pd.DataFrame,
    periods: Iterable[date],
    thresholds: Thresholds = Thresholds(),
    grain: Grain = DAILY,
    min_history_days: int = 28,
    skus: pd.DataFrame | None = None,
    ai_usage: pd.DataFrame | None = None,
    ai_keys: pd.DataFrame | None = None,
    gpus: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score each series in each of ``periods`` against its horizon-0 forecast, run the rules for
    what a band misses (``detection.rules``), and mark each anomaly a finer one explains.

    ``forecasts`` has ``target_period, series_key, expected_cost, lower_bound, upper_bound`` and
    optionally ``model``. A series with no cost in a period it had a forecast for scores as 0: a
    service that stops is an anomaly too. ``skus`` (series_key, period, sku_id, cost) holds the
    SKUs in their first weeks on a series, for the new-SKU rule; ``ai_usage``, ``ai_keys`` and
    ``gpus`` (``queries.ai_usage``, ``ai_key_usage``, ``gpu_usage``) what the AI rules read.
    """
    history = history_by_series(series)
    meta = series_metadata(series) if not series.empty else pd.DataFrame()
    # A period without a single usage line item is a bill not delivered yet, not every series
    # dropping to zero at once: nothing to score until it arrives.
    wanted = set(periods) & billed_periods(series)
    rows = {}
    costs_of: dict[str, rules.Costs] = {}

    def costs(key) -> rules.Costs:
        if key not in costs_of:
            costs_of[key] = rules.Costs(history[key].rename(key))
        return costs_of[key]

    noise_of: dict = {}

    def noise(key, period):
        """The series' ``relative_noise`` before the period (daily series: an hour's noise is
        another matter), computed once."""
        if not grain.calendar_rules or not thresholds.alert_noise_sigmas:
            return None
        if (key, period) not in noise_of:
            noise_of[key, period] = relative_noise(costs(key), period)
        return noise_of[key, period]

    factor_of: dict = {}

    def day_factor(key, period):
        """Its ``day_of_month_factor`` (daily series), computed once."""
        if not grain.calendar_rules or not thresholds.alert_noise_sigmas:
            return None
        if (key, period) not in factor_of:
            factor_of[key, period] = day_of_month_factor(costs(key), period)
        return factor_of[key, period]

    def sigmas(key, period, actual, expected):
        return alert_sigmas(actual, expected, noise(key, period), day_factor(key, period), thresholds)

    for f in _outside_band(forecasts, series, wanted, thresholds).itertuples(index=False):
        values = costs(f.series_key)
        result = score(f.actual, f.expected_cost, f.lower_bound, f.upper_bound, same_weekday_history(values, f.target_period),
                       thresholds, band=f"{f.model}_interval",
                       same_day_of_month=same_day_of_month_history(values, f.target_period),
                       noise=noise(f.series_key, f.target_period), day_factor=day_factor(f.series_key, f.target_period),
                       alert_bounds=(getattr(f, "alert_lower", None), getattr(f, "alert_upper", None)),
                       job_upper=getattr(f, "job_upper", None))
        if result is not None:
            rows[f.series_key, f.target_period] = _row(f.series_key, meta.loc[f.series_key], f.target_period, f.actual,
                                                       f.expected_cost, f.lower_bound, f.upper_bound, result, grain)
    keys = list(zip(forecasts.series_key, forecasts.target_period))
    forecast_for = set(keys)
    hits = [h for h in rules.new_series(history, wanted, min_history_days, thresholds) if (h.series_key, h.period) not in forecast_for]
    if skus is not None and len(skus):
        hits += rules.new_skus(skus[skus["period"].isin(wanted)], history, dict(zip(keys, forecasts.expected_cost)), thresholds)
    if grain.calendar_rules:
        for key in history:
            # These rules are about spend rising: a period that cost less than the $ floor cannot
            # be one (checked first, as a large bill has thousands of series).
            values = costs(key)
            for period in sorted(p for p in wanted if values.get(p) >= thresholds.min_impact_usd):
                hits += filter(None, (rules.slow_ramp(values, period, thresholds),
                                      rules.level_shift(values, period, thresholds),
                                      rules.weekend_like_weekday(values, period, thresholds)))
    if ai_usage is not None and len(ai_usage):
        hits += [h for h in ai_hits(ai_usage, wanted, grain.step, thresholds) if h.series_key in history]
    if ai_keys is not None and len(ai_keys):
        hits += [h for h in runaway_key(ai_keys, wanted, grain.step, grain.periods_per_week, thresholds)
                 if h.series_key in history]
    if gpus is not None and len(gpus):
        hits += [h for h in idle_gpus(gpus, wanted, thresholds) if h.series_key in history]
    scored = forecasts[forecasts["target_period"].isin(wanted)]
    hits += _data_gaps(scored, meta, history, costs, grain)
    calibrated = scored if "span_expected" in scored else scored.iloc[:0]
    span = Calibration.for_granularity(grain.name).span(grain)
    spans = calibrated.dropna(subset=["span_expected"]) if "span_expected" in calibrated else calibrated
    for f in spans.itertuples(index=False):
        if f.series_key in history:
            hit = rules.unusual_span(costs(f.series_key), f.target_period, grain.step, span, f.expected_cost,
                                     (f.lower_bound, f.upper_bound), f.span_expected,
                                     (f.span_alert_lower, f.span_alert_upper), thresholds,
                                     (f.active_cost, f.span_active_limit), f.profile)
            if hit is not None:
                hits.append(hit)
    bounds = {(k, p): (lo, hi) for k, p, lo, hi in zip(calibrated.series_key, calibrated.target_period,
                                                        calibrated.get("alert_lower", []), calibrated.get("alert_upper", []))}
    for hit in hits:
        known = rows.get((hit.series_key, hit.period))
        if known is not None:  # the band saw it too: name the rule that explains it
            if hit.rule not in known["detectors"].split(","):
                known["detectors"] += f",{hit.rule}"
            if hit.rule in CAUSED_RULES:  # and the cause lowers the row's warning floor
                gate = None if hit.rule in AI_RULES else sigmas(hit.series_key, hit.period, known["actual_cost"],
                                                                    known["expected_cost"])
                caused = (waste_severity(hit.actual - hit.expected, thresholds) if hit.rule in WASTE_RULES else
                          severity(known["impact_usd"], known["deviation_pct"], thresholds, gate, caused=True))
                known["severity"] = max(known["severity"], caused, key=SEVERITIES.index)
            continue
        impact, dev = hit.actual - hit.expected, deviation_pct(hit.actual, hit.expected)
        noise_gate = None if hit.rule in AI_RULES else sigmas(hit.series_key, hit.period, hit.actual, hit.expected)
        level = (waste_severity(impact, thresholds) if hit.rule in WASTE_RULES else
                 severity(impact, dev, thresholds, noise_gate, caused=hit.rule in CAUSED_RULES))
        if hit.rule == "no_line_items":
            level = "info"  # a data gap pages by how long it lasts (see incidents.summarize)
        if hit.rule == "unusual_span" and within_calibration(hit.actual, hit.expected, bounds.get((hit.series_key, hit.period)),
                                                            None, thresholds):
            level = "info"  # an ordinary period of an unusual span: the incident's totals page
        result = Score("spike" if impact > 0 else "drop", impact, dev, None, level, (hit.rule,))
        rows[hit.series_key, hit.period] = _row(hit.series_key, meta.loc[hit.series_key], hit.period, hit.actual,
                                                hit.expected, hit.lower, hit.upper, result, grain)
    # What the AI rules saw, in their own figures (a cached share, a price per 1M tokens, an idle
    # GPU), for the alert.
    findings: dict[tuple, list[str]] = {}
    for hit in hits:
        if hit.rule in AI_RULES and hit.note:
            findings.setdefault((hit.series_key, hit.period), []).append(hit.note)
    # And every anomaly of an AI series, whatever found it: its tokens, cache share, requests and
    # $ per 1M tokens beside its dollars.
    for frame in (ai_usage, ai_keys):
        if frame is None or not len(frame):
            continue
        by_key = dict(tuple(frame.groupby("series_key")))
        for (key, period) in rows:
            if key in by_key:
                note = usage_note(by_key[key], period, grain.step, thresholds)
                if note:
                    findings.setdefault((key, period), []).append(note)
    for where, notes in findings.items():
        rows[where]["findings"] = json.dumps(notes)
    out = pd.DataFrame(list(rows.values()), columns=DETECTED_COLUMNS)
    out = _with_calibration(out, calibrated, costs, grain)
    out["explained_by"] = explained_by(out)
    out["period_start"] = pd.to_datetime(out["period_start"], utc=True)
    return out.sort_values(["period_start", "impact_usd"], ascending=[True, False], ignore_index=True)


def waste_severity(impact_usd: float, t: Thresholds) -> str:
    """A ``WASTE_RULES`` finding (its rule has judged the money to matter): a warning, critical
    from the critical $ floor."""
    return "critical" if impact_usd >= t.critical_impact_usd else "warning"


def _data_gaps(forecasts: pd.DataFrame, meta: pd.DataFrame, history: dict[str, pd.Series], costs, grain: Grain) -> list:
    """``rules.no_line_items`` for every forecast series without line items in its period: the
    rest of its bill is its provider's (a provider's: the other providers'). Team series are
    tags and API keys credentials, not deliveries, and are left out: a key that goes quiet was
    rotated or its job ended, and a lost export shows on its project and provider."""
    hits = []
    for key, period, expected in zip(forecasts["series_key"], forecasts["target_period"], forecasts["expected_cost"]):
        if key == "total" or key not in history or costs(key).has(period):
            continue
        level = meta.loc[key, "series_level"]
        if level in ("team", "api_key"):  # a tag, a key: rotated or idle keys stop, exports do not
            continue
        rest = "total" if level == "provider" else series_key("provider", meta.loc[key, "provider"])
        arrives = rest in history and costs(rest).has(period)
        hit = rules.no_line_items(costs(key), period, grain.step, float(expected), arrives)
        if hit is not None:
            hits.append(hit)
    return hits


def _with_calibration(found: pd.DataFrame, calibrated: pd.DataFrame, costs, grain: Grain) -> pd.DataFrame:
    """Each anomaly with its series' profile and calibrated range (``alert_lower``, ``alert_upper``)
    and ``span_usual``: whether the span ending at it cost within its calibrated range (None when
    unknown). An incident made of periods whose spans are all usual pages by no total. ``costs``:
    a series' ``rules.Costs`` by key."""
    columns = ["profile", "alert_lower", "alert_upper", "span_expected", "span_alert_lower", "span_alert_upper"]
    if calibrated.empty or "profile" not in calibrated:
        return found.assign(**{c: None for c in ("profile", "alert_lower", "alert_upper", "span_usual")})
    lookup = calibrated.set_index(["series_key", "target_period"])[columns]
    keys = pd.MultiIndex.from_arrays([found["series_key"], [grain.period(p) for p in found["period_start"]]])
    cal = lookup.reindex(keys)
    span = Calibration.for_granularity(grain.name).span(grain)
    usual = []
    for key, period, profile, expected, lo, hi, rules_hit in zip(
            found["series_key"], keys.get_level_values(1), cal["profile"], cal["span_expected"], cal["span_alert_lower"],
            cal["span_alert_upper"], found["detectors"]):
        if "unusual_span" in rules_hit.split(","):  # its span is unusual by the rule (jobs every day)
            usual.append(False)
        elif pd.isna(expected) or pd.isna(lo) or pd.isna(hi):
            usual.append(None)
        else:
            usual.append(not rules.span_beyond(costs(key).at(period - i * grain.step for i in range(span)), expected,
                                               (lo, hi), profile))
    return found.assign(profile=cal["profile"].to_numpy(), alert_lower=cal["alert_lower"].round(2).to_numpy(),
                        alert_upper=cal["alert_upper"].round(2).to_numpy(), span_usual=usual)


def _outside_band(forecasts: pd.DataFrame, series: pd.DataFrame, wanted: set, t: Thresholds) -> pd.DataFrame:
    """The forecasts of ``wanted`` periods whose actual cost is outside the band and past both
    floors, with ``actual``: the few worth a robust z-score, out of one row per series and period."""
    f = forecasts[forecasts["target_period"].isin(wanted) & forecasts["series_key"].isin(set(series["series_key"]))]
    if "model" not in f:
        f = f.assign(model="prophet")
    actual = series.set_index(["series_key", "period"])["cost"]
    index = pd.MultiIndex.from_arrays([f["series_key"], f["target_period"]])
    f = f.assign(actual=actual.reindex(index, fill_value=0.0).to_numpy(dtype=float))
    impact = f["actual"] - f["expected_cost"]
    deviation = [deviation_pct(a, e) for a, e in zip(f["actual"], f["expected_cost"])]
    outside = (f["actual"] < f["lower_bound"]) | (f["actual"] > f["upper_bound"])
    return f[outside & (impact.abs() >= t.min_impact_usd) & (np.abs(deviation) >= t.min_deviation_pct)]


def explained_across(found: pd.DataFrame, causes: list[dict[str, list[dict]]], share: float = 0.5) -> list[str | None]:
    """``explained_by``, completed across dimensions: an anomaly no finer series contains (a team
    whose spike is one resource newly tagged for it; an account, a service) is explained by the
    sub-account × service anomaly of the same period and direction whose line items carry at
    least ``share`` of its impact, as its root cause (``causes``, one per row, from
    ``queries.root_causes``) shows them: one event, one alert."""
    # None, not NaN, for "unexplained": a str column's where(..., None) gives NaN back.
    out = [None if pd.isna(v) else v for v in found["explained_by"]]
    records = found.reset_index(drop=True).to_dict("records")
    finest = {}
    for r in records:
        if r["series_level"] == "sub_account_service":
            finest[(r["period_start"], r["direction"], f"{r['sub_account_name']} / {r['service_name']}")] = r["anomaly_id"]
    for i, r in enumerate(records):
        if out[i] is not None or r["series_level"] == "sub_account_service" or is_data_gap(r["detectors"]):
            continue
        for item in causes[i].get("sub_account / service", []):
            carried = item["delta"] * np.sign(r["impact_usd"])
            match = finest.get((r["period_start"], r["direction"], item["name"]))
            if match is not None and carried >= share * abs(r["impact_usd"]):
                out[i] = match
                break
    return out


def is_data_gap(detectors: str) -> bool:
    """Whether an anomaly is a data gap (``rules.no_line_items``) rather than a cost change."""
    return "no_line_items" in str(detectors).split(",")


def explained_by(found: pd.DataFrame, share: float = 0.5) -> list[str | None]:
    """For each anomaly, the anomaly of a finer series it contains, in the same period and
    direction, that carries at least ``share`` of its $ impact (a sub-account × service first,
    then the largest); None when no finer anomaly explains it. One runaway instance moves its
    service, account, provider, team and the total: the finest series is the one to alert on."""
    out: list[str | None] = [None] * len(found)
    records = found.reset_index(drop=True).to_dict("records")
    gap = [is_data_gap(r["detectors"]) for r in records]
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault((r["period_start"], r["direction"]), []).append(i)
    for members in groups.values():
        for i in members:
            coarse = records[i]
            if gap[i]:
                # A data gap is told where it is widest: a sub-account's missing rows explain its
                # services' missing rows, not the other way round.
                wider = [records[j] for j in members if gap[j] and contains(records[j], coarse)]
                if wider:
                    out[i] = min(wider, key=lambda f: (SERIES_LEVELS.index(f["series_level"]), f["anomaly_id"]))["anomaly_id"]
                continue
            candidates = [records[j] for j in members
                          if contains(coarse, records[j]) and abs(records[j]["impact_usd"]) >= share * abs(coarse["impact_usd"])]
            if candidates:
                best = max(candidates, key=lambda f: (f["series_level"] == "sub_account_service", abs(f["impact_usd"]),
                                                      f["anomaly_id"]))
                out[i] = best["anomaly_id"]
    return out


DETECTED_COLUMNS = ["anomaly_id", "period_start", "granularity", "series_level", "series_key", "provider", "sub_account_id",
                    "sub_account_name", "service_name", "team", "api_key_id", "direction", "actual_cost", "expected_cost", "lower_bound",
                    "upper_bound", "impact_usd", "deviation_pct", "robust_z", "severity", "detectors", "findings"]


def _row(key, m, period, actual, expected, lower, upper, result: Score, grain: Grain) -> dict:
    return {
        "anomaly_id": anomaly_id(key, period, grain.name),
        "period_start": pd.Timestamp(period, tz="UTC"),
        "granularity": grain.name,
        "series_level": m.series_level,
        "series_key": key,
        "provider": m.provider,
        "sub_account_id": m.sub_account_id,
        "sub_account_name": m.sub_account_name,
        "service_name": m.service_name,
        "team": m.team,
        "api_key_id": m.api_key_id,
        "direction": result.direction,
        "actual_cost": round(actual, 2),
        "expected_cost": round(float(expected), 2),
        "lower_bound": round(float(lower), 2),
        "upper_bound": round(float(upper), 2),
        "impact_usd": round(result.impact_usd, 2),
        "deviation_pct": round(result.deviation_pct, 1),
        "robust_z": None if result.robust_z is None else round(result.robust_z, 2),
        "severity": result.severity,
        "detectors": ",".join(result.detectors),
    }
