"""Self-hosted AI spend from Prometheus (``PROMETHEUS_URL``), read with ``GET /api/v1/query_range``:
GPUs priced by the hour, and the cost and tokens that inference services count themselves.

Three metric families, each optional (``FINOPS_PROMETHEUS_METRICS``, default all three):

* ``gpu``: GPU utilisation, ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (a ratio) where it exists, else
  ``DCGM_FI_DEV_GPU_UTIL`` (a percent). One row per GPU and hour: the minutes it reported, priced
  at its type's hourly price (``FINOPS_PROMETHEUS_GPU_PRICES``), estimated; its mean utilisation,
  the minutes it was idle (below ``FINOPS_PROMETHEUS_IDLE_BELOW_PCT``, 10 %), the longest idle
  streak reaching into the hour (counted from at most an hour before it, so an hour reads the same
  in any window: 120 at most), and the minutes it was *absent* (no sample between its first and
  last one: an exporter or scrape gap, which is not counted idle: what is not seen is not called
  waste). The idle-GPU rule (``detection.ai_rules.idle_gpus``) reads these.
* ``requests``: the cost-per-request histogram's counters ``ai_request_cost_dollars_sum`` and
  ``_count``: each hour's increase per model and team is a row of that many dollars and requests
  (SkuMeter "Requests", estimated: the service's own pricing of its requests).
* ``tokens``: the token counter ``ai_api_tokens_total``: each hour's increase per model, team and
  direction is a row of tokens (no money: the requests rows carry it).

Counters' increases are summed from one-minute samples with counter resets handled (a restart
starts from zero), without Prometheus's extrapolation, so an hour's figure is what was counted in
it. Metric names, the labels read and the step are settings with these defaults. The bearer token
(``PROMETHEUS_BEARER_TOKEN``) or basic-auth password (``PROMETHEUS_PASSWORD``, with
``PROMETHEUS_USERNAME``) is read from the environment when a window is fetched and never logged.

If the same requests are also billed by an admin-API source (``openai``, ``anthropic``), or the
GPUs serving them are priced here too, leave ``requests`` out: it would count that money twice.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import numpy as np
import pandas as pd

from finops_pipeline.errors import BillingDataError, SettingsError
from finops_pipeline.mapping_spec import parse_mapping
from finops_pipeline.sources.ai_billing import CENT, METERS, utc
from finops_pipeline.sources.base import CostBasis, Rows
from finops_pipeline.sources.focus import FOCUS_COLUMNS, billing_period
from finops_pipeline.sources.http_api import JsonApi

FAMILIES = ("gpu", "requests", "tokens")
# GPU utilisation metrics, in order of preference, and the factor that makes each a percent.
GPU_METRICS = {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "ratio", "DCGM_FI_DEV_GPU_UTIL": "percent"}
SCALES = {"ratio": 100.0, "percent": 1.0}
# Roles → the label each is read from. A GPU is (node, gpu); node falls back to ``instance``.
GPU_LABELS = {"node": "Hostname", "gpu": "gpu", "type": "modelName", "team": "team"}
AI_LABELS = {"model": "model", "team": "team", "direction": "direction"}
DIRECTIONS = {"input": "input", "prompt": "input", "in": "input", "output": "output", "completion": "output",
              "out": "output", "cached": "cached_input", "cached_input": "cached_input", "cache_read": "cached_input"}
STEP = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# Prometheus answers at most 11,000 points a series a query: a day of minutes a query.
CHUNK = timedelta(days=1)
# Read before a window: a counter's first increase needs the sample before it, an idle streak its start.
LOOK_BACK = timedelta(hours=1)
X_COLUMNS = ("x_Model", "x_TokenType", "x_Requests", "x_CostSource", "x_GpuBusyPct", "x_IdleMinutes",
             "x_IdleStreakMinutes", "x_AbsentMinutes")


@dataclass(frozen=True)
class Series:
    """One time series of a ``query_range`` answer: its labels and its samples at each step
    (NaN where it had none), on the query's step grid starting at ``start``."""

    labels: Mapping[str, str]
    values: np.ndarray


@dataclass(frozen=True)
class PrometheusApi:
    """``GET /api/v1/query_range`` on ``api`` (a ``JsonApi`` at PROMETHEUS_URL)."""

    api: JsonApi

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta = STEP) -> list[Series]:
        """Every series ``query`` gives on the steps of ``[start, end)``, in chunks Prometheus accepts."""
        n = int((end - start) / step)
        merged: dict[tuple, np.ndarray] = {}
        labels_of: dict[tuple, dict] = {}
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(end, chunk_start + CHUNK)
            offset = int((chunk_start - start) / step)
            for labels, values in self._chunk(query, chunk_start, chunk_end, step):
                key = tuple(sorted(labels.items()))
                row = merged.setdefault(key, np.full(n, np.nan))
                labels_of[key] = labels
                row[offset:offset + len(values)] = values
            chunk_start = chunk_end
        return [Series(labels_of[k], v) for k, v in merged.items()]

    def _chunk(self, query: str, start: datetime, end: datetime, step: timedelta):
        path = "/api/v1/query_range"
        where = f"Prometheus: GET {self.api.base_url}{path} ({query!r}, {start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M} UTC)"
        params = {"query": query, "start": f"{start.timestamp():.0f}",
                  "end": f"{(end - step).timestamp():.0f}", "step": f"{step.total_seconds():.0f}s"}
        body = self.api.get(path, params)
        if body.get("status") != "success":
            raise BillingDataError(f"{where}: status {body.get('status')!r}: {body.get('error', 'no error given')}")
        data = body.get("data") or {}
        if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
            raise BillingDataError(f"{where}: expected a matrix result, got {data.get('resultType')!r} "
                                   "(nothing of the window was written)")
        n = int((end - start) / step)
        for i, series in enumerate(data["result"]):
            values = np.full(n, np.nan)
            for j, point in enumerate(series.get("values") or []):
                try:
                    t, v = float(point[0]), float(point[1])
                except (TypeError, ValueError, IndexError):
                    raise BillingDataError(f"{where}: result[{i}] ({_name(series.get('metric'))}), values[{j}] is "
                                           f"{point!r}, not [unix time, \"number\"] (nothing of the window was written)"
                                           ) from None
                k = round((t - start.timestamp()) / step.total_seconds())
                if 0 <= k < n and math.isfinite(v):
                    values[k] = v
            yield dict(series.get("metric") or {}), values


def _name(labels) -> str:
    labels = dict(labels or {})
    name = labels.pop("__name__", "")
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class GpuHour:
    """What one GPU did in one hour."""

    hour: datetime
    node: str
    gpu: str
    gpu_type: str
    team: str | None
    reported_minutes: int
    busy_pct: float | None
    idle_minutes: int
    idle_streak_minutes: int  # the longest run of idle minutes reaching into the hour, from at most an hour before
    absent_minutes: int


def gpu_hours(series: Iterable[Series], start: datetime, hours: int, lookback_steps: int, scale: float,
              idle_below_pct: float, labels: Mapping[str, str] = GPU_LABELS) -> list[GpuHour]:
    """Per GPU and hour of ``hours`` from ``start``, its ``GpuHour``. Each series' values are a
    minute each from ``start`` − ``lookback_steps`` minutes (the look-back only carries idle
    streaks into the first hour); ``scale`` makes them percent. A GPU's several series (a pod
    label that changed) are one, its busiest value a minute."""
    per_gpu: dict[tuple, np.ndarray] = {}
    info: dict[tuple, tuple] = {}
    for s in series:
        node = s.labels.get(labels["node"]) or s.labels.get("instance") or "unknown"
        key = (node, s.labels.get(labels["gpu"], "0"))
        values = s.values * scale
        per_gpu[key] = np.fmax(per_gpu[key], values) if key in per_gpu else values
        info[key] = (s.labels.get(labels["type"]) or "unknown", s.labels.get(labels["team"]) or info.get(key, (0, None))[1])
    out = []
    for (node, gpu), values in sorted(per_gpu.items()):
        seen = np.flatnonzero(~np.isnan(values))
        if not len(seen):
            continue
        first, last = seen[0], seen[-1]
        idle = ~np.isnan(values) & (values < idle_below_pct)
        for h in range(hours):
            lo, hi = lookback_steps + 60 * h, lookback_steps + 60 * (h + 1)
            if hi <= first or lo > last:
                continue  # not allocated yet, or released
            window = values[lo:hi]
            present = ~np.isnan(window)
            inside = np.arange(lo, hi)
            absent = int(np.sum(~present & (inside > first) & (inside < last)))
            out.append(GpuHour(start + h * HOUR, node, gpu, info[node, gpu][0], info[node, gpu][1], int(present.sum()),
                               float(np.mean(window[present])) if present.any() else None, int(idle[lo:hi].sum()),
                               _longest_streak(idle[max(0, lo - 60):hi], min(60, lo)), absent))
    return out


def _longest_streak(idle: np.ndarray, before: int) -> int:
    """The longest run of idle minutes (consecutive ``True``; a gap ends one) that reaches past
    the first ``before`` minutes: an hour's streak, counted from at most an hour before it, so
    that it is the same whatever window the hour is read in."""
    index = np.arange(len(idle))
    streak = index - np.maximum.accumulate(np.where(idle, -1, index))
    return int(streak[before:].max()) if len(idle) > before else 0


def increases(series: Iterable[Series], group: tuple[str, ...], hours: int, lookback_steps: int
              ) -> dict[tuple, np.ndarray]:
    """Per combination of the ``group`` labels, each hour's increase of the counters ``series``
    (summed over their other labels): the positive steps between samples, a drop read as a reset
    from zero. The first sample of each series needs one before it: the look-back gives it."""
    out: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(hours))
    for s in series:
        values = s.values
        known = np.flatnonzero(~np.isnan(values))
        if len(known) < 2:
            continue
        v = values[known]
        deltas = np.diff(v)
        deltas = np.where(deltas < 0, v[1:], deltas)  # a reset: the counter restarted at 0
        hour = (known[1:] - lookback_steps) // 60
        inside = (hour >= 0) & (hour < hours)
        np.add.at(out[tuple(s.labels.get(g) for g in group)], hour[inside], deltas[inside])
    return dict(out)


def _settings_map(options: Mapping[str, str], variable: str, default: Mapping[str, str], pair: str) -> dict[str, str]:
    try:
        return {**default, **parse_mapping(options.get(variable), variable, pair)}
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


@dataclass(frozen=True)
class PrometheusSource:
    """Self-hosted AI spend from Prometheus; see the module docstring."""

    name: ClassVar[str] = "prometheus"
    cost_basis: ClassVar[CostBasis] = "estimated"
    url: str
    account: str = "prometheus"  # SubAccountId of the GPUs: the cluster
    provider: str = "Self-hosted"
    families: tuple[str, ...] = FAMILIES
    gpu_metrics: Mapping[str, str] = field(default_factory=lambda: dict(GPU_METRICS))
    gpu_labels: Mapping[str, str] = field(default_factory=lambda: dict(GPU_LABELS))
    gpu_prices: Mapping[str, Decimal] = field(default_factory=dict)  # GPU type (or "*") → USD an hour
    idle_below_pct: float = 10.0
    request_metric: str = "ai_request_cost_dollars"
    token_metric: str = "ai_api_tokens_total"
    ai_labels: Mapping[str, str] = field(default_factory=lambda: dict(AI_LABELS))
    username: str | None = None

    @classmethod
    def from_settings(cls, settings) -> PrometheusSource:
        options = settings.source_options
        url = options.get("PROMETHEUS_URL")
        if not url:
            raise SettingsError("FINOPS_SOURCE includes prometheus: set PROMETHEUS_URL (e.g. http://prometheus:9090)")
        families = tuple(f.strip().lower() for f in (options.get("FINOPS_PROMETHEUS_METRICS") or ",".join(FAMILIES)).split(",")
                         if f.strip())
        unknown = [f for f in families if f not in FAMILIES]
        if unknown or not families:
            raise SettingsError(f"FINOPS_PROMETHEUS_METRICS={options.get('FINOPS_PROMETHEUS_METRICS')!r}: use one or more "
                                f"of {', '.join(FAMILIES)}, comma-separated")
        # Given, the list replaces the defaults: its order is the order of preference.
        metrics = (_settings_map(options, "FINOPS_PROMETHEUS_GPU_METRICS", {}, "metric=ratio|percent")
                   or dict(GPU_METRICS))
        bad = [f"{m}={s}" for m, s in metrics.items() if s not in SCALES]
        if bad:
            raise SettingsError(f"FINOPS_PROMETHEUS_GPU_METRICS: say whether each metric is a ratio or a percent: {', '.join(bad)}")
        prices = {}
        for gpu_type, text in _settings_map(options, "FINOPS_PROMETHEUS_GPU_PRICES", {}, "gpu_type=usd_per_hour").items():
            try:
                prices[gpu_type] = Decimal(text)
            except ArithmeticError:
                raise SettingsError(f"FINOPS_PROMETHEUS_GPU_PRICES: {gpu_type}={text!r} is not a price in USD an hour") from None
        if "gpu" in families and not prices:
            raise SettingsError("FINOPS_PROMETHEUS_METRICS includes gpu: set FINOPS_PROMETHEUS_GPU_PRICES to each GPU "
                                "type's price an hour (e.g. 'NVIDIA A100-SXM4-80GB=3.67,*=2.50'; * for any other type)")
        idle = options.get("FINOPS_PROMETHEUS_IDLE_BELOW_PCT") or "10"
        try:
            idle_below = float(idle)
        except ValueError:
            idle_below = -1.0
        if not 0 < idle_below <= 100:
            raise SettingsError(f"FINOPS_PROMETHEUS_IDLE_BELOW_PCT={idle!r}: use a percent of utilisation above 0")
        if "PROMETHEUS_PASSWORD" in settings.secrets_set and not options.get("PROMETHEUS_USERNAME"):
            raise SettingsError("PROMETHEUS_PASSWORD is set without PROMETHEUS_USERNAME: basic auth needs both")
        return cls(url=url, account=options.get("FINOPS_PROMETHEUS_ACCOUNT") or cls.account,
                   provider=options.get("FINOPS_PROMETHEUS_PROVIDER") or cls.provider, families=families,
                   gpu_metrics=metrics,
                   gpu_labels=_settings_map(options, "FINOPS_PROMETHEUS_GPU_LABELS", GPU_LABELS, "role=label"),
                   gpu_prices=prices, idle_below_pct=idle_below,
                   request_metric=options.get("FINOPS_PROMETHEUS_REQUEST_METRIC") or cls.request_metric,
                   token_metric=options.get("FINOPS_PROMETHEUS_TOKEN_METRIC") or cls.token_metric,
                   ai_labels=_settings_map(options, "FINOPS_PROMETHEUS_AI_LABELS", AI_LABELS, "role=label"),
                   username=options.get("PROMETHEUS_USERNAME") or None)

    def _api(self) -> PrometheusApi:
        headers = {}
        token, password = os.environ.get("PROMETHEUS_BEARER_TOKEN", "").strip(), os.environ.get("PROMETHEUS_PASSWORD", "")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.username:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{self.username}:{password}".encode()).decode()
        advice = {401: " (check PROMETHEUS_BEARER_TOKEN, or PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD)",
                  403: " (the token or user may not query this Prometheus)"}
        return PrometheusApi(JsonApi("Prometheus", self.url, headers, advice=advice))

    def fetch(self, window) -> Rows:
        start, end = utc(window.start), utc(window.end)
        api, since = self._api(), start - LOOK_BACK
        gpu, scale = [], "percent"
        if "gpu" in self.families:
            for metric, scale in self.gpu_metrics.items():
                gpu = api.query_range(metric, since, end)
                if gpu:
                    break
        wanted = {"requests": (f"{self.request_metric}_sum", f"{self.request_metric}_count"), "tokens": (self.token_metric,)}
        counters = {name: api.query_range(name, since, end)
                    for family, names in wanted.items() if family in self.families for name in names}
        return self.rows(start, end, gpu, SCALES[scale], counters)

    def rows(self, start: datetime, end: datetime, gpu: list[Series], scale: float,
             counters: Mapping[str, list[Series]]) -> Rows:
        """The FOCUS rows of the hours of ``[start, end)`` from the series read (a minute a value
        from ``start`` − ``LOOK_BACK``): GPU utilisation (``scale`` makes it percent) and the
        counters by metric name. The demo feeds it series of its own."""
        hours, look = int((end - start) / HOUR), int(LOOK_BACK / STEP)
        warnings: list[str] = []
        rows = self._gpu_rows(gpu_hours(gpu, start, hours, look, scale, self.idle_below_pct, self.gpu_labels), warnings)
        if "requests" in self.families:
            group = (self.ai_labels["model"], self.ai_labels["team"])
            dollars = increases(counters.get(f"{self.request_metric}_sum", []), group, hours, look)
            counts = increases(counters.get(f"{self.request_metric}_count", []), group, hours, look)
            rows += self._request_rows(start, hours, dollars, counts)
        if "tokens" in self.families:
            group = (self.ai_labels["model"], self.ai_labels["team"], self.ai_labels["direction"])
            rows += self._token_rows(start, increases(counters.get(self.token_metric, []), group, hours, look))
        return Rows(pd.DataFrame(rows, columns=list(FOCUS_COLUMNS) + list(X_COLUMNS)), tuple(warnings))

    def _gpu_rows(self, found: list[GpuHour], warnings: list[str]) -> list[dict]:
        rows, unpriced = [], set()
        for g in found:
            price = self.gpu_prices.get(g.gpu_type, self.gpu_prices.get("*"))
            if price is None:
                unpriced.add(g.gpu_type)
            cost = (price * g.reported_minutes / 60).quantize(CENT) if price is not None else Decimal(0)
            rows.append(self._row(
                g.hour, self.account, "Cluster", f"GPU {g.gpu_type}", "Compute", "Virtual Machines", cost,
                meter="GPU Hours", unit="Hours", quantity=Decimal(g.reported_minutes) / 60, pricing_unit="1 Hour",
                resource=(f"{g.node}/gpu{g.gpu}", "GPU"), team=g.team,
                x_GpuBusyPct=None if g.busy_pct is None else round(g.busy_pct, 2), x_IdleMinutes=g.idle_minutes,
                x_IdleStreakMinutes=g.idle_streak_minutes, x_AbsentMinutes=g.absent_minutes, x_CostSource="estimated"))
        if unpriced:
            warnings.append(f"Prometheus: no price for GPU type(s) {', '.join(sorted(unpriced))}: counted at $0; add them "
                            "(or *) to FINOPS_PROMETHEUS_GPU_PRICES")
        return rows

    def _request_rows(self, start: datetime, hours: int, dollars: dict, counts: dict) -> list[dict]:
        rows, none = [], np.zeros(hours)
        for key in sorted(set(dollars) | set(counts), key=str):
            model, team = key
            for h in range(hours):
                cost, requests = dollars.get(key, none)[h], counts.get(key, none)[h]
                if cost <= 0 and requests <= 0:
                    continue
                n = int(round(requests))
                rows.append(self._row(start + h * HOUR, team or self.account, "Team", model or "unknown model",
                                      "AI and Machine Learning", "Generative AI", Decimal(str(float(cost))).quantize(CENT),
                                      meter="Requests", unit="Requests", quantity=Decimal(n), pricing_unit="1 Request",
                                      team=team, x_Model=model, x_TokenType="requests", x_Requests=n,
                                      x_CostSource="estimated"))
        return rows

    def _token_rows(self, start: datetime, tokens: dict) -> list[dict]:
        rows = []
        for (model, team, direction), per_hour in sorted(tokens.items(), key=lambda kv: str(kv[0])):
            token_type = DIRECTIONS.get((direction or "").lower(), "input")
            for h in np.flatnonzero(per_hour > 0):
                n = int(round(per_hour[h]))
                rows.append(self._row(start + int(h) * HOUR, team or self.account, "Team", model or "unknown model",
                                      "AI and Machine Learning", "Generative AI", Decimal(0),
                                      meter=METERS[token_type][0], unit="Tokens", quantity=Decimal(n),
                                      pricing_unit="1000000 Tokens", team=team, x_Model=model, x_TokenType=token_type,
                                      x_CostSource="estimated"))
        return rows

    def _row(self, hour: datetime, sub_account: str, sub_account_type: str, service: str, category: str,
             subcategory: str, cost: Decimal, *, meter: str, unit: str, quantity: Decimal, pricing_unit: str,
             resource: tuple[str, str] | None = None, team: str | None = None, **extra) -> dict:
        month, next_month = billing_period(hour.date())
        row = dict.fromkeys(list(FOCUS_COLUMNS) + list(X_COLUMNS))
        row.update(
            BillingAccountId=self.account, BillingAccountName=self.account, BillingAccountType="Cluster",
            SubAccountId=sub_account, SubAccountName=sub_account, SubAccountType=sub_account_type,
            BillingPeriodStart=month, BillingPeriodEnd=next_month, ChargePeriodStart=hour, ChargePeriodEnd=hour + HOUR,
            BilledCost=str(cost), EffectiveCost=str(cost), ListCost=str(cost), ContractedCost=str(cost),
            BillingCurrency="USD", ProviderName=self.provider, PublisherName=self.provider, InvoiceIssuerName=self.provider,
            ServiceName=service, ServiceCategory=category, ServiceSubcategory=subcategory,
            ResourceId=resource[0] if resource else None, ResourceName=resource[0] if resource else None,
            ResourceType=resource[1] if resource else None, SkuMeter=meter, ChargeCategory="Usage",
            ChargeDescription=f"{service} {meter} (from Prometheus)", ChargeFrequency="Usage-Based",
            PricingCategory="Standard", PricingQuantity=str(quantity), PricingUnit=pricing_unit,
            ConsumedQuantity=str(quantity), ConsumedUnit=unit, Tags=json.dumps({"team": team} if team else {}),
        )
        row.update(extra)
        return row
