"""The demo's self-hosted AI spend: what a GPU cluster's Prometheus would hold, a sample a minute
(DCGM utilisation per GPU, a served model's request-cost and token counters), turned into FOCUS
rows by the same ``PrometheusSource.rows`` the real source uses.

Three nodes: ``gpu-a100-1`` serves a model to the web team (busy by day, quieter at night),
``gpu-a100-2`` trains for the ML team (busy around the clock but for a 20-minute checkpoint at
02:00, too short to be idle), ``gpu-l4-1`` runs embeddings. The injected anomaly
(``demo_ai_injected_anomalies.csv``, kind ``idle_gpu``) leaves the training node allocated and
idle after its job ends.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache

import numpy as np
import pandas as pd

from finops_pipeline.sources.demo_ai import injected_ai_anomalies
from finops_pipeline.sources.prometheus import LOOK_BACK, STEP, PrometheusSource, Series

SEED = 20250103
CLUSTER = "acme-gpu"
A100, L4 = "NVIDIA A100-SXM4-80GB", "NVIDIA L4"
PRICES = {A100: Decimal("3.67"), L4: Decimal("0.80")}
# node → (GPU type, GPUs, team, habit)
NODES = {"gpu-a100-1": (A100, 4, "web", "serving"), "gpu-a100-2": (A100, 4, "ml", "training"),
         "gpu-l4-1": (L4, 2, "data", "serving")}
SERVED = (("llama-3.1-70b-instruct", "web", 20_000, 0.004), ("bge-large-en", "data", 60_000, 0.0002))  # a day


@cache
def source() -> PrometheusSource:
    return PrometheusSource(url="demo", account=CLUSTER, gpu_prices=PRICES)


def _minutes(day: date) -> np.ndarray:
    """The minutes sampled for ``day``: its own and the look-back before it, as UTC datetimes' hours of day."""
    n = int((timedelta(days=1) + LOOK_BACK) / STEP)
    return (np.arange(n) - int(LOOK_BACK / STEP)) / 60.0 % 24


def _idle(node: str, day: date) -> np.ndarray:
    """Which of the day's minutes (with the look-back) the injected anomaly leaves ``node`` idle:
    from 14:00 on its first day to the end of its last."""
    start = np.datetime64(day) - np.timedelta64(int(LOOK_BACK / STEP), "m")
    moments = start + np.arange(len(_minutes(day))).astype("timedelta64[m]")
    idle = np.zeros(len(moments), dtype=bool)
    for truth in injected_ai_anomalies():
        if truth.kind == "idle_gpu" and truth.api_key_id == node:
            first = np.datetime64(truth.start_date) + np.timedelta64(14, "h")
            last = np.datetime64(truth.end_date) + np.timedelta64(1, "D")
            idle |= (moments >= first) & (moments < last)
    return idle


def series(day: date) -> tuple[list[Series], dict[str, list[Series]]]:
    """The day's GPU utilisation (ratios) and counters, a minute a value from the look-back on."""
    rng = np.random.default_rng([SEED, day.toordinal()])
    hour = _minutes(day)
    diurnal = 0.5 + 0.5 * np.sin((hour - 9) / 24 * 2 * np.pi).clip(-1, 1)  # peaks mid-afternoon
    gpus = []
    for node, (gpu_type, count, team, habit) in NODES.items():
        idle = _idle(node, day)
        for g in range(count):
            if habit == "training":
                busy = np.where((hour >= 2) & (hour < 2 + 20 / 60), 0.05, 0.92)
            else:
                busy = 0.3 + 0.55 * diurnal
            busy = np.where(idle, 0.01, busy) + rng.normal(0, 0.03, len(hour))
            labels = {"__name__": "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Hostname": node, "gpu": str(g), "modelName": gpu_type,
                      "team": team}
            gpus.append(Series(labels, busy.clip(0, 1)))
    counters: dict[str, list[Series]] = {"ai_request_cost_dollars_sum": [], "ai_request_cost_dollars_count": [],
                                         "ai_api_tokens_total": []}
    for model, team, per_day, price in SERVED:
        weight = (0.2 + diurnal) / (0.2 + diurnal).sum() * per_day
        requests = rng.poisson(weight * rng.lognormal(0, 0.05))
        labels = {"model": model, "team": team}
        counters["ai_request_cost_dollars_count"].append(Series({**labels, "__name__": "ai_request_cost_dollars_count"},
                                                                np.cumsum(requests).astype(float)))
        counters["ai_request_cost_dollars_sum"].append(Series({**labels, "__name__": "ai_request_cost_dollars_sum"},
                                                              np.cumsum(requests * price * rng.lognormal(0, 0.1, len(hour)))))
        for direction, per_request in (("input", 900), ("output", 250)):
            counters["ai_api_tokens_total"].append(Series({**labels, "direction": direction, "__name__": "ai_api_tokens_total"},
                                                          np.cumsum(requests * per_request).astype(float)))
    return gpus, counters


def generate(start: date, end: date) -> pd.DataFrame:
    """The cluster's FOCUS rows (with their ``x_`` columns) for the days in ``[start, end)``."""
    frames = []
    day = start
    while day < end:
        gpus, counters = series(day)
        first = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        frames.append(source().rows(first, first + timedelta(days=1), gpus, 100.0, counters).frame)
        day += timedelta(days=1)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
