"""The demo's AI bill: OpenAI and Anthropic usage and costs, three teams, several models and API
keys, made the way the vendors' admin APIs report them (a cost line per day, project, model and
token type; usage per key) and turned into FOCUS rows by the same ``ai_billing.to_focus`` the real
sources use. Four anomalies of the AI kinds are injected from ``demo_ai_injected_anomalies.csv``,
also their ground truth: a retry loop on one key, a prompt cache that stops hitting, a
long-context tier billed at twice the price, prompts that grew threefold.

Each day is generated on its own from a seed derived from the date, as the cloud demo bill is.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from finops_pipeline.sources.ai_billing import CostLine, PriceTable, UsageLine, Vendor, to_focus

SEED = 20250102
VENDORS = {"OpenAI": Vendor("OpenAI", "org-acme-demo", "Project", "default"),
           "Anthropic": Vendor("Anthropic", "acme-anthropic-demo", "Workspace", "default")}
TEAMS = {"proj_support": "web", "proj_search": "data", "wrkspc_research": "ml"}


@dataclass(frozen=True)
class KeyUsage:
    """One API key's daily habit on one model."""

    provider: str
    sub_account: str
    model: str
    key: str
    input_tokens: float  # a weekday's input tokens (cached ones included)
    cached_share: float  # of the input, read from the prompt cache
    output_ratio: float  # output tokens per input token
    tokens_per_request: float  # input tokens a request


KEYS = (
    KeyUsage("OpenAI", "proj_support", "gpt-4o-2024-08-06", "key_support_bot", 300e6, 0.50, 0.05, 3000),
    KeyUsage("OpenAI", "proj_support", "gpt-4o-mini-2024-07-18", "key_support_triage", 600e6, 0.30, 0.10, 1500),
    KeyUsage("OpenAI", "proj_search", "text-embedding-3-small", "key_indexer", 4000e6, 0.0, 0.0, 800),
    KeyUsage("OpenAI", "proj_search", "gpt-4o-2024-08-06", "key_search_answer", 200e6, 0.30, 0.05, 2500),
    KeyUsage("Anthropic", "wrkspc_research", "claude-sonnet-4-20250514", "key_research_agent", 150e6, 0.70, 0.10, 6000),
    KeyUsage("Anthropic", "wrkspc_research", "claude-3-5-haiku-20241022", "key_eval_harness", 400e6, 0.0, 0.10, 2500),
)


@dataclass(frozen=True)
class InjectedAiAnomaly:
    name: str
    kind: str  # retry_loop, cache_collapse, unit_cost_rise, cost_per_request
    start_date: date
    end_date: date
    provider: str
    sub_account_id: str
    service_name: str  # the model
    api_key_id: str
    factor: float
    story: str

    def covers(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


@cache
def injected_ai_anomalies() -> tuple[InjectedAiAnomaly, ...]:
    """The ground truth: the AI anomalies the generator injects."""
    text = resources.files("finops_pipeline.sources").joinpath("demo_ai_injected_anomalies.csv").read_text()
    return tuple(InjectedAiAnomaly(r["name"], r["kind"], date.fromisoformat(r["start_date"]),
                                   date.fromisoformat(r["end_date"]), r["provider"], r["sub_account_id"],
                                   r["service_name"], r["api_key_id"], float(r["factor"]), r["story"])
                 for r in csv.DictReader(text.splitlines()))


def _lines(day: date) -> tuple[dict[str, list[CostLine]], dict[str, list[UsageLine]]]:
    """The day's cost and usage lines per vendor, as their admin APIs would give them."""
    rng = np.random.default_rng([SEED, day.toordinal()])
    prices = _prices()
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    costs: dict[str, dict[tuple, Decimal]] = {p: {} for p in VENDORS}
    usage: dict[str, list[UsageLine]] = {p: [] for p in VENDORS}
    for k in KEYS:
        truths = [t for t in injected_ai_anomalies() if t.api_key_id == k.key and t.covers(day)]
        kind = {t.kind: t.factor for t in truths}
        weekly = 0.7 if day.weekday() >= 5 else 1.0
        # A retry loop repeats whole requests; prompts that grew are more tokens in the same requests.
        volume = k.input_tokens * weekly * rng.lognormal(0.0, 0.05) * kind.get("retry_loop", 1.0)
        requests = volume / k.tokens_per_request
        volume *= kind.get("cost_per_request", 1.0)
        share = k.cached_share * kind.get("cache_collapse", 1.0)
        tokens = {"input": volume * (1 - share), "cached_input": volume * share, "output": volume * k.output_ratio}
        first = True
        for token_type, n in tokens.items():
            n = int(n)
            if n <= 0:
                continue
            usage[k.provider].append(UsageLine(start, end, k.sub_account, k.model, k.key, token_type, n,
                                               int(requests) if first else None))
            first = False
            price = prices.price(k.provider, k.model, token_type) or Decimal(0)
            if token_type == "input":
                price *= Decimal(str(kind.get("unit_cost_rise", 1.0)))  # a long-context tier
            line = (k.sub_account, k.model, token_type)
            costs[k.provider][line] = costs[k.provider].get(line, Decimal(0)) + price * n
    cost_lines = {p: [CostLine(start, end, account, model, token_type, amount.quantize(Decimal("0.000001")),
                               f"{model}, {token_type.replace('_', ' ')}")
                      for (account, model, token_type), amount in sorted(lines.items())]
                  for p, lines in costs.items()}
    return cost_lines, usage


@cache
def _prices() -> PriceTable:
    return PriceTable.load()


def generate(start: date, end: date) -> pd.DataFrame:
    """The AI bill's FOCUS rows (with their ``x_`` columns) for the charge days in ``[start, end)``."""
    frames = []
    day = start
    while day < end:
        costs, usage = _lines(day)
        for provider, vendor in VENDORS.items():
            frame, _ = to_focus(vendor, costs[provider], usage[provider], _prices(), TEAMS)
            frames.append(frame)
        day += timedelta(days=1)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
