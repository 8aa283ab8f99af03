"""Rules for AI API spend, over what the cost alone does not show: the price paid per token, the
share of input read from the cache, the cost of a request. Each compares a period with the
median of the same ratio over the series' ``Thresholds.ai_baseline_periods`` before it, needs the volume to be
real, and states what it finds as dollars on the project × model series: the period's cost
against what it would have cost at the usual ratio. So the severity, incident and alert machinery
treat them like any other finding, with the numbers a person checks.

``usage`` is the AI usage mart summed over API keys: one row per period, project × model series
(``series_key``) and token type with ``quantity`` (tokens), ``requests`` and ``cost``
(``queries.ai_usage``).
"""

from __future__ import annotations

from collections.abc import Iterable
import numpy as np
import pandas as pd

from finops_pipeline.detection.rules import Hit
from finops_pipeline.detection.scoring import Thresholds

INPUT_TYPES = ("input", "cached_input")
TOKEN_TYPES = ("input", "cached_input", "cache_write_5m", "cache_write_1h", "output")


# At least this many periods with volume before a ratio has a median to compare with; and the input
# volume within this factor of its median for a change of the cached share to be the cache's.
MIN_BASELINE_PERIODS = 7
VOLUME_BAND = (0.5, 2.0)


def _baseline(values: pd.Series, period, t: Thresholds, step) -> float | None:
    """The median of ``values`` (indexed by period, NaN where there was no volume) over the
    ``ai_baseline_periods`` before ``period``; None with too few of them."""
    before = values[(values.index < period) & (values.index >= period - t.ai_baseline_periods * step)].dropna()
    return float(before.median()) if len(before) >= MIN_BASELINE_PERIODS else None


def ai_hits(usage: pd.DataFrame, periods: Iterable, step, t: Thresholds) -> list[Hit]:
    """Every rule's hits in ``periods``, each needing an excess of at least ``t.min_impact_usd``."""
    wanted = set(periods)
    hits: list[Hit] = []
    for key, rows in usage.groupby("series_key", sort=True):
        by_type = rows.pivot_table(index="period", columns="token_type", values=["quantity", "cost"], aggfunc="sum")
        cost = rows.groupby("period")["cost"].sum()
        requests = rows.groupby("period")["requests"].sum(min_count=1)
        for period in sorted(wanted & set(cost.index)):
            found = [h for h in (unit_cost_rise(key, by_type, cost, period, step, t),
                                 cache_collapse(key, by_type, cost, period, step, t),
                                 cost_per_request(key, requests, cost, period, step, t)) if h is not None]
            hits += _material(found, t)
    return hits


def _material(hits: Iterable[Hit], t: Thresholds) -> list[Hit]:
    """The hits whose excess reaches the anomaly $ floor, ``t.min_impact_usd``."""
    return [h for h in hits if h.actual - h.expected >= t.min_impact_usd]


def unit_cost_rise(key: str, by_type: pd.DataFrame, cost: pd.Series, period, step, t: Thresholds) -> Hit | None:
    """A token type's $ per token at least ``ai_unit_cost_rise_pct`` above its median: a price change,
    a larger context tier, batch traffic moved to standard. The excess is what the period's tokens
    cost above the median price."""
    excess, notes = 0.0, []
    for token_type in sorted(by_type["quantity"].columns if "quantity" in by_type else []):
        if token_type == "requests":  # a request's price: cost_per_request's
            continue
        quantity, spent = by_type["quantity"][token_type], by_type["cost"][token_type]
        unit = (spent / quantity.where(quantity > 0)).astype(float)
        now = unit.get(period, np.nan)
        usual = _baseline(unit, period, t, step)
        if usual is None or usual <= 0 or pd.isna(now) or now < usual * (1 + t.ai_unit_cost_rise_pct / 100):
            continue
        excess += (now - usual) * float(quantity[period])
        if token_type in TOKEN_TYPES:
            notes.append(f"{token_type} ${now * 1e6:,.2f} per 1M tokens against ${usual * 1e6:,.2f}")
        else:  # an image, a search, a character or second of audio
            notes.append(f"{token_type} ${now:,.4f} each against ${usual:,.4f}")
    if excess <= 0:
        return None
    actual = float(cost[period])
    return Hit("unit_cost_rise", key, period, actual, actual - excess, actual - excess, actual - excess, "; ".join(notes))


def cache_collapse(key: str, by_type: pd.DataFrame, cost: pd.Series, period, step, t: Thresholds) -> Hit | None:
    """The share of input tokens read from the cache fell to at most ``ai_cache_drop_share`` of its
    median (which was at least ``ai_cache_min_share``) while the input volume held: the bill rises with
    no more traffic. The excess is the tokens that missed the cache, at the input price less the
    cached one (each at its median)."""
    if "quantity" not in by_type or not set(INPUT_TYPES) <= set(by_type["quantity"].columns):
        return None
    fresh, cached = (by_type["quantity"][c].fillna(0.0) for c in INPUT_TYPES)
    volume = (fresh + cached).where(fresh + cached > 0)
    share = cached / volume
    usual_share, usual_volume = _baseline(share, period, t, step), _baseline(volume, period, t, step)
    now_share, now_volume = share.get(period, np.nan), volume.get(period, np.nan)
    if usual_share is None or usual_volume is None or pd.isna(now_share) or usual_share < t.ai_cache_min_share:
        return None
    low, high = VOLUME_BAND
    if now_share > t.ai_cache_drop_share * usual_share or not low * usual_volume <= now_volume <= high * usual_volume:
        return None
    prices = [_baseline((by_type["cost"][c] / by_type["quantity"][c].where(by_type["quantity"][c] > 0)).astype(float),
                        period, t, step) for c in INPUT_TYPES]
    if any(p is None for p in prices):
        return None
    excess = (usual_share - now_share) * now_volume * (prices[0] - prices[1])
    if excess <= 0:
        return None
    actual = float(cost[period])
    return Hit("cache_collapse", key, period, actual, actual - excess, actual - excess, actual - excess,
               f"cached share of input {now_share:.0%} against {usual_share:.0%}, input volume {now_volume / usual_volume:.0%} "
               "of usual")


def cost_per_request(key: str, requests: pd.Series, cost: pd.Series, period, step, t: Thresholds) -> Hit | None:
    """A request costing at least ``ai_cost_per_request_factor`` times its median: prompts that grew, a
    model that answers at length. The excess is the period's requests at the difference."""
    per_request = (cost / requests.where(requests > 0)).astype(float)
    now, usual = per_request.get(period, np.nan), _baseline(per_request, period, t, step)
    if usual is None or usual <= 0 or pd.isna(now) or now < t.ai_cost_per_request_factor * usual:
        return None
    excess = (now - usual) * float(requests[period])
    actual = float(cost[period])
    return Hit("cost_per_request", key, period, actual, actual - excess, actual - excess, actual - excess,
               f"${now:,.4f} a request against ${usual:,.4f}")


# The runaway-key rule's look-back: the same point of the week in this many weeks before, of
# which at least RUNAWAY_MIN_WEEKS must have had usage.
RUNAWAY_WEEKS = 4
RUNAWAY_MIN_WEEKS = 2


def runaway_key(keys: pd.DataFrame, periods: Iterable, step, week: int, t: Thresholds) -> list[Hit]:
    """An API key's requests (its tokens, where the vendor gives no request counts) at least
    ``ai_runaway_factor`` times their median at the same point of the week (``week`` periods
    apart) over the ``RUNAWAY_WEEKS`` before: a retry loop, a leaked key, a job run on a loop. On
    the key's series (``queries.ai_key_usage``); the excess is the period's cost beyond its
    usual share of requests."""
    wanted = set(periods)
    hits = []
    for key, rows in keys.groupby("series_key", sort=True):
        by_period = rows.groupby("period")[["requests", "tokens", "cost"]].sum(min_count=1)
        volume_of = "requests" if by_period["requests"].notna().any() else "tokens"
        volume = by_period[volume_of]
        for period in sorted(wanted & set(by_period.index)):
            now = volume.get(period)
            before = [volume.get(period - k * week * step) for k in range(1, RUNAWAY_WEEKS + 1)]
            before = [v for v in before if v is not None and pd.notna(v) and v > 0]
            if pd.isna(now) or len(before) < RUNAWAY_MIN_WEEKS:
                continue
            usual = float(np.median(before))
            if now < t.ai_runaway_factor * usual:
                continue
            actual = float(by_period.at[period, "cost"])
            expected = actual * usual / float(now)
            hits.append(Hit("runaway_key", key, period, actual, expected, expected, expected,
                            f"{volume_of} {now:,.0f} against a usual {usual:,.0f} at this time of the week "
                            f"({now / usual:.1f}×)"))
    return _material(hits, t)


def idle_gpus(gpus: pd.DataFrame, periods: Iterable, t: Thresholds) -> list[Hit]:
    """GPUs idle for a streak of at least ``gpu_idle_minutes`` (``queries.gpu_usage``: their idle
    cost is already that of such streaks) that together burn at least ``gpu_idle_usd_an_hour``
    while idle, on their series (the cluster × GPU type): the excess is the idle minutes' cost.
    Minutes a GPU did not report are absent, not idle, and are said apart."""
    wanted = set(periods)
    hits = []
    for (key, period), rows in gpus[gpus["period"].isin(wanted)].groupby(["series_key", "period"], sort=True):
        idle = rows[(rows["idle_cost"] > 0) & (rows["idle_minutes"] > 0)]
        # What the idle GPUs burn together an hour: a node of four $0.80 GPUs left idle matters as
        # much as one $3.20 GPU; one cheap GPU alone does not.
        if idle.empty or (idle["idle_cost"] / (idle["idle_minutes"] / 60)).sum() < t.gpu_idle_usd_an_hour:
            continue
        excess = float(idle["idle_cost"].sum())
        actual = float(rows["cost"].sum())
        notes = [f"{r.resource_id} idle {r.idle_minutes} min (longest streak {r.idle_streak_minutes} min), "
                 f"${r.idle_cost:,.2f} at ${r.idle_cost / (r.idle_minutes / 60):,.2f} an hour"
                 + (f"; {r.absent_minutes} min absent (no samples)" if r.absent_minutes else "")
                 for r in idle.sort_values("idle_cost", ascending=False).itertuples()]
        hits.append(Hit("idle_gpu", key, period, actual, actual - excess, actual - excess, actual - excess,
                        "; ".join(notes)))
    return hits


def usage_note(rows: pd.DataFrame, period, step, t: Thresholds) -> str | None:
    """What an AI series used in ``period`` beside its usual (the median of the
    ``ai_baseline_periods`` before): tokens, the cached share of input, requests and $ per 1M
    tokens, so an alert on its dollars carries the volumes that explain them. ``rows``: one series'
    ``queries.ai_usage`` rows (by token type) or ``queries.ai_key_usage`` rows (``tokens``)."""
    if "token_type" in rows:
        tokens_of = rows[rows["token_type"].isin(TOKEN_TYPES)]
        tokens = tokens_of.groupby("period")["quantity"].sum()
        token_cost = tokens_of.groupby("period")["cost"].sum()
        by_type = rows.pivot_table(index="period", columns="token_type", values="quantity", aggfunc="sum")
        share = None
        if set(INPUT_TYPES) <= set(by_type.columns):
            fresh, cached = (by_type[c].fillna(0.0) for c in INPUT_TYPES)
            share = cached / (fresh + cached).where(fresh + cached > 0)
    else:
        tokens, token_cost, share = rows.groupby("period")["tokens"].sum(min_count=1), rows.groupby("period")["cost"].sum(), None
    requests = rows.groupby("period")["requests"].sum(min_count=1)
    per_million = (token_cost / tokens.where(tokens > 0) * 1e6).astype(float)
    figures = [("tokens", tokens, lambda v: f"{v / 1e6:,.1f}M tokens"),
               ("cached", share, lambda v: f"{v:.0%} of input cached"),
               ("requests", requests, lambda v: f"{v:,.0f} requests"),
               ("price", per_million, lambda v: f"${v:,.2f} per 1M tokens")]
    now, usual = [], []
    for _, values, form in figures:
        if values is None or pd.isna(values.get(period, np.nan)):
            continue
        now.append(form(float(values[period])))
        before = _baseline(values.astype(float), period, t, step)
        usual.append(form(before) if before is not None else "—")
    if not now:
        return None
    return f"usage: {', '.join(now)}; usually {', '.join(usual)}"
