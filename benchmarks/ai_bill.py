"""A labelled AI-spend bill: two years of OpenAI and Anthropic usage and costs, made the way the
vendors' admin APIs report them and turned into FOCUS rows by ``ai_billing.to_focus`` (the code the
real sources use), and a self-hosted GPU estate made the way Prometheus holds it and turned into
rows by ``PrometheusSource.rows``, so that the AI detection can be measured on a bill none of its
thresholds was chosen on (``detection_benchmark.py --bill ai``).

Its design is not the demo's (``finops_pipeline/sources/demo_ai.py``: six keys, a constant weekday
volume, 5 % noise, one factor per anomaly). Here each API key is a process of its own, drawn over the
whole span at once:

* **keys** (35 of the organisation's and their 2 rotated successors, 8 more from the anomalies; 5
  projects and 5 workspaces, 8 teams, 17 models; console usage without a key besides): daily
  *requests* from the key's profile (``flat``: a product's traffic, weekends at 70–95 %;
  ``office``: people at work, weekends at 12–40 % and a year-end dip; ``bursty``: log-Student-t
  days, σ 0.25–0.45; ``nightly``: a batch job every weekday, none at weekends; ``jobs``: batch runs
  on 20–45 % of days, nothing between), compounding growth of −10 to +100 % a year and AR(1) noise
  of 4–15 %; *tokens per request* (prompt and output) drifting slowly with noise of their own; a
  prompt-cache hit rate that wanders (logit random walk) around its key's mean of 0–80 %, Anthropic
  keys also writing 2–6 % of their prompts to the cache. Batch keys are billed at the Batch API's
  half price. Levels from about $3 to $700 a day per key;
* **cost and usage lines** as the endpoints give them: a cost line per day, project (workspace),
  model and token type (its tokens at the model's price × the key's tier); usage lines per day,
  project, model, API key and token type, the day's requests on the first. ``to_focus`` joins them.
  Console usage outside any project (no key) is there too.

Model names are the vendors' current snapshots, used from the bill's first day whatever their
release date: to the pipeline a model is a series name and a price.

Benign events (labelled ``benign``), habits a detector must not page for:

* ``model_migration``: a project moves every key of a model to a newer one over three to five
  weeks (a logistic share, under 10 % in the first week); some leave a straggling tail to the end of
  the bill, others stop after a few weeks;
* ``gradual_adoption``: a key that starts part-way and grows from a few dollars a day to its level
  over about six weeks;
* ``key_rotation``: a key replaced by a new one on a day (the same traffic, a new key id).

Anomalies (``ANOMALY_KINDS``), each worth $300–$3,000 in total (``IMPACT_USD``), after a 120-day
warm-up, with 28 quiet days around each on the series it touches:

* ``runaway_key``: a retry loop, one key's requests and tokens 3–20 times for 3–60 hours;
* ``leaked_key``: a key no one knew, spending around the clock in an existing project for 2–8 days,
  rising as it is resold (on a model the project uses, or a dear one it does not);
* ``cache_collapse``: the cached share of a key's input (≥ 40 %, on a project × model it carries
  ≥ 80 % of) falls to 2–8 % for 3–12 days with the traffic unchanged. On OpenAI the missed prefix is
  billed as input; on Anthropic, a prefix that changes every request, as cache writes (1.25× input);
* ``unit_cost_rise``: the same tokens billed 1.5–3×: a batch key moved to the standard tier (×2),
  an Anthropic long-context tier (input ×2, output ×1.5), OpenAI priority processing (×1.75), on a
  project × model the key is alone on (the cost endpoint gives money per project × model, which
  ``to_focus`` shares among its keys by tokens);
* ``cost_per_request``: prompts 2–5 times longer (the added part never cached), the same requests;
* ``model_switch``: one key's traffic moved within a day to a model at least 4 times the price the
  project never used, for 2–7 days, then back: the new model's series is new, the old one drops;
* ``new_project``: a project no one registered (its spend untagged), one or two keys on one model,
  spending from its first day for 3–8 days.

Labels have ``labelled_bill.LABEL_COLUMNS`` and two more (``AI_LABEL_COLUMNS``): ``api_key_id``, the
key the event is about, and ``also_series``, further series keys (';'-separated) an alert on which is
about the event too (the old model's series of a switch, a new project's second key). A label is
about: its project × model series (``series_key``, with ``provider``, ``sub_account_id`` and
``service_name``), its key's series ``api_key:{provider}/{project}/{key}`` (``api_key_id``), every
coarser series holding them (project, provider, model, team, total) and the ``also_series``;
``covers`` is that test, ``detection_metrics.covers`` extended, which ``detection_benchmark`` uses
for this bill. ``expected_impact_usd`` is the cost above what the bill would have cost without the
event, ``baseline_usd_per_day`` the project × model series' normal cost a day in the window.

**A self-hosted GPU estate** (ProviderName ``Self-hosted``), made as a cluster's Prometheus holds
it and turned into FOCUS rows by ``PrometheusSource.rows`` (the real source's code), a day at a
time with its hour of look-back, one source per cluster (the SubAccountId). Its design is not the
demo's (``demo_prometheus.py``: one cluster of three fixed nodes, every day alike). Here
(``NODES``): three clusters (``gpu-east``, ``gpu-west``, ``gpu-lab``), 12 nodes and 40 GPUs over the
span (at most 38 at once) of three types at hourly prices (``GPU_PRICES``: A100 $3.67, H100 $6.98,
L4 $0.80), four teams of their own (``inference``, ``ml-infra``, ``data-science``, ``research-lab``:
the API bill's team series stay its own). Each GPU reports its utilisation
(``DCGM_FI_PROF_GR_ENGINE_ACTIVE``) a minute, by habit:

* ``inference``: load following its users' day (the cluster's time zone; peak mid-afternoon,
  22–32 % at night, lighter at weekends), slowly growing, a GPU's own offset and noise; a replica
  restarting now and then (one GPU at 0–5 % for 2–8 minutes);
* ``training``: runs of 2–14 days back to back at 82–97 %, a checkpoint every 2–6 hours (every
  GPU of the node at 0–5 % for 4–25 minutes), the next run loading for 3–15 minutes: idle minutes
  whose streak never reaches the idle rule's 30;
* ``batch``: the node is allocated only while a job runs (``BATCH``: nightly ETL on most weekdays,
  a lab's experiments and small jobs by day), 2–12 minutes of loading at 0–5 % before it starts,
  released when it ends: no samples, so no rows, between jobs (within a day, the source counts the
  minutes between two jobs absent).

Exporter scrape gaps of 5–40 minutes (every ~20 days a node: absent minutes, unbilled) and nodes
that join or leave (``node_added``, ``node_removed``: benign, labelled for two weeks on their
series) come with the estate. Anomalies (``idle_gpu``, ``IDLE_EVENTS``), after the warm-up with
28 quiet days around each on its series: a node (every GPU) or a single GPU left allocated at 0–5 %
for 6 hours to 4 days after what it ran ended (a batch job whose allocation was not released, a
training run with no successor, a deployment scaled to zero on its reserved node, a replica's
process that died), ten across the three types and clusters (fewer on a bill shorter than two
years), from tens to hundreds of dollars each. Whether one is worth
a page is the project's policy (``PAGE_FLOOR_USD_AN_HOUR``: idle GPUs burning $2 an hour): a single
L4 left idle ($0.80 an hour) is labelled benign (``idle_below_floor``, two of them); a node of four
L4s ($3.20 an hour together, $0.80 each) is an anomaly. A GPU label's ``series_key`` is its cluster
× GPU type series as the pipeline names it (``sub_account_service:Self-hosted/{cluster}/GPU
{type}``), its ``api_key_id`` empty; its ``expected_impact_usd`` is the idle GPUs' cost in the
window (the waste: where the allocation would have been released, also the cost above the bill
without it), its ``description`` names the node, the GPU and the times. The GPU labels follow the
API bill's, numbered on from them.

One seed gives one bill; ``generate(..., anomalies=False)`` gives the same bill without its
anomalies (benign events kept), so the injected rows can be told apart; ``gpus=False``, the API
bill alone, the same rows and labels as with the GPUs (the estate draws from a random stream of its
own). Usage:

    python benchmarks/ai_bill.py OUT_DIR [--start 2024-01-01 --end 2026-01-01 --seed 17]
"""

from __future__ import annotations

import copy
import sys
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for `benchmarks.*`

from benchmarks import detection_metrics  # noqa: E402
from benchmarks.labelled_bill import LABEL_COLUMNS, run  # noqa: E402
from finops_pipeline.detection.series import series_key  # noqa: E402
from finops_pipeline.sources.ai_billing import CostLine, PriceTable, UsageLine, Vendor, to_focus  # noqa: E402
from finops_pipeline.sources.focus import FOCUS_COLUMNS, TIMESTAMP_COLUMNS  # noqa: E402
from finops_pipeline.sources.prometheus import LOOK_BACK, STEP, PrometheusSource, Series  # noqa: E402

AI_LABEL_COLUMNS = [*LABEL_COLUMNS, "api_key_id", "also_series"]
AI_X_COLUMNS = ("x_Model", "x_TokenType", "x_ApiKeyId", "x_Requests", "x_CostSource")
GPU_X_COLUMNS = ("x_GpuBusyPct", "x_IdleMinutes", "x_IdleStreakMinutes", "x_AbsentMinutes")  # the Prometheus source's
X_COLUMNS = (*AI_X_COLUMNS, *GPU_X_COLUMNS)
ANOMALY_KINDS = ("runaway_key", "leaked_key", "cache_collapse", "unit_cost_rise", "cost_per_request", "model_switch",
                 "new_project")
BENIGN_KINDS = ("model_migration", "gradual_adoption", "key_rotation")
QUOTA = {"runaway_key": 5, "leaked_key": 4, "cache_collapse": 4, "unit_cost_rise": 4, "cost_per_request": 4,
         "model_switch": 4, "new_project": 3}
WARM_UP_DAYS = 120  # no anomaly before: four months of history, 28 days of it for the AI rules' medians
QUIET_DAYS = 28  # around each event, no other event on the series it touches
IMPACT_USD = (300.0, 3000.0)  # an anomaly's total excess
TOKEN_TYPES = ("input", "cached_input", "cache_write_5m", "output")

VENDORS = {"OpenAI": Vendor("OpenAI", "org-initech", "Project", "default"),
           "Anthropic": Vendor("Anthropic", "initech-anthropic", "Workspace", "default")}

# USD per 1M tokens: input, cached input (a cache read), output, 5-minute cache write (Anthropic).
_GPT4O, _GPT4O_MINI = "gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18"
_GPT41, _GPT41_MINI, _GPT41_NANO = "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano-2025-04-14"
_O3_MINI, _O1, _GPT5_MINI = "o3-mini-2025-01-31", "o1-2024-12-17", "gpt-5-mini-2025-08-07"
_EMB_L, _EMB_S = "text-embedding-3-large", "text-embedding-3-small"
_SONNET35, _SONNET4, _HAIKU3 = "claude-3-5-sonnet-20241022", "claude-sonnet-4-20250514", "claude-3-haiku-20240307"
_HAIKU35, _HAIKU45 = "claude-3-5-haiku-20241022", "claude-haiku-4-5-20251001"
_OPUS3, _OPUS4 = "claude-3-opus-20240229", "claude-opus-4-20250514"
PRICES = {
    "OpenAI": {
        "gpt-4o": (2.50, 1.25, 10.00, None), "gpt-4o-mini": (0.15, 0.075, 0.60, None),
        "gpt-4.1": (2.00, 0.50, 8.00, None), "gpt-4.1-mini": (0.40, 0.10, 1.60, None),
        "gpt-4.1-nano": (0.10, 0.025, 0.40, None), "o3-mini": (1.10, 0.55, 4.40, None), "o1": (15.00, 7.50, 60.00, None),
        "gpt-5-mini": (0.25, 0.025, 2.00, None), "text-embedding-3-large": (0.13, None, None, None),
        "text-embedding-3-small": (0.02, None, None, None),
    },
    "Anthropic": {
        "claude-3-5-sonnet": (3.00, 0.30, 15.00, 3.75), "claude-sonnet-4": (3.00, 0.30, 15.00, 3.75),
        "claude-3-haiku": (0.25, 0.03, 1.25, 0.30), "claude-3-5-haiku": (0.80, 0.08, 4.00, 1.00),
        "claude-haiku-4-5": (1.00, 0.10, 5.00, 1.25), "claude-3-opus": (15.00, 1.50, 75.00, 18.75),
        "claude-opus-4": (15.00, 1.50, 75.00, 18.75),
    },
}
# A model switch goes to one of these: at least 4 times the price of the model it leaves.
DEARER = {_GPT4O_MINI: (_GPT4O, _O1), _GPT41_MINI: (_GPT41, _O1), _GPT41_NANO: (_GPT41, _GPT4O), _O3_MINI: (_O1,),
          _GPT5_MINI: (_GPT41, _O1), _HAIKU3: (_SONNET4, _OPUS4), _HAIKU35: (_OPUS4,), _HAIKU45: (_OPUS4,),
          _SONNET35: (_OPUS4,), _SONNET4: (_OPUS4,)}
# What a leaked key is used for when it is not a model its project has: the dearest.
LEAK_MODELS = {"OpenAI": (_GPT4O, _O1, _GPT41), "Anthropic": (_OPUS4, _SONNET4)}

# project or workspace → team (the FINOPS_AI_TEAMS map: the ``team`` tag)
TEAMS = {"proj_helpdesk": "cx", "proj_search": "search", "proj_growth": "growth", "proj_data": "data",
         "proj_platform": "platform", "wrkspc_devtools": "devtools", "wrkspc_research": "ml", "wrkspc_support": "cx",
         "wrkspc_legal": "legal", "wrkspc_growth": "growth"}


@dataclass(frozen=True)
class KeySpec:
    """An API key's habit: its project, first model, cost a day at its first day, profile, and
    tokens per request: prompt (cached and cache writes included), output, cached share."""

    provider: str
    project: str
    name: str
    model: str
    usd_per_day: float
    profile: str  # flat, office, bursty, nightly, jobs
    prompt: float
    output: float
    cached: float = 0.0
    batch: bool = False  # billed at the Batch API's half price
    start: str | None = None  # a key adopted part-way: the ISO day it starts
    console: bool = False  # usage without a key (the console, the playground)


_O, _A = "OpenAI", "Anthropic"
KEYS = (
    KeySpec(_O, "proj_helpdesk", "helpdesk-chat-web", _GPT4O, 320, "flat", 2600, 280, 0.55),
    KeySpec(_O, "proj_helpdesk", "helpdesk-chat-app", _GPT4O, 140, "flat", 2400, 250, 0.50),
    KeySpec(_O, "proj_helpdesk", "helpdesk-triage", _GPT4O_MINI, 28, "flat", 1200, 60, 0.35),
    KeySpec(_O, "proj_helpdesk", "helpdesk-summarize", _GPT4O_MINI, 14, "office", 4000, 300),
    KeySpec(_O, "proj_helpdesk", "helpdesk-qa-batch", _GPT41_NANO, 45, "nightly", 6000, 400, batch=True),
    KeySpec(_O, "proj_search", "search-indexer", _EMB_L, 55, "bursty", 800, 0),
    KeySpec(_O, "proj_search", "search-query-embed", _EMB_S, 4, "flat", 40, 0),
    KeySpec(_O, "proj_search", "search-answer", _GPT4O, 230, "flat", 5200, 350, 0.60),
    KeySpec(_O, "proj_search", "search-rerank", _GPT4O_MINI, 48, "flat", 3000, 20, 0.60),
    KeySpec(_O, "proj_growth", "growth-email-gen", _GPT4O_MINI, 22, "office", 1500, 500, 0.20),
    KeySpec(_O, "proj_growth", "growth-enrich-batch", _GPT41_MINI, 160, "jobs", 7000, 500, batch=True),
    KeySpec(_O, "proj_growth", "growth-voice-agent", _GPT4O, 180, "flat", 3500, 220, 0.40, start="2024-10-07"),
    KeySpec(_O, "proj_data", "data-sql-agent", _GPT4O, 85, "office", 3500, 900, 0.35),
    KeySpec(_O, "proj_data", "data-classify-batch", _GPT4O_MINI, 38, "nightly", 900, 30, batch=True),
    KeySpec(_O, "proj_data", "data-notebook", _GPT41_MINI, 11, "bursty", 3000, 500, 0.20),
    KeySpec(_O, "proj_platform", "platform-ci-review", _GPT4O, 110, "office", 9000, 600, 0.60),
    KeySpec(_O, "proj_platform", "platform-dev-alice", _GPT4O_MINI, 3, "office", 2000, 300, 0.10),
    KeySpec(_O, "proj_platform", "platform-dev-bob", _GPT41_MINI, 5, "office", 2500, 400, 0.10),
    KeySpec(_O, "proj_platform", "platform-evals", _O3_MINI, 60, "jobs", 4000, 1500, 0.30),
    KeySpec(_O, "proj_search", "search-agent", _GPT5_MINI, 120, "flat", 6000, 700, 0.50, start="2025-09-15"),
    KeySpec(_O, "default", "console", _GPT4O, 7, "bursty", 3000, 600, console=True),
    KeySpec(_A, "wrkspc_devtools", "devtools-code-agent", _SONNET35, 620, "office", 30000, 900, 0.78),
    KeySpec(_A, "wrkspc_devtools", "devtools-pr-review", _SONNET35, 110, "office", 18000, 700, 0.50),
    KeySpec(_A, "wrkspc_devtools", "devtools-autocomplete", _HAIKU35, 80, "office", 2500, 40, 0.60),
    KeySpec(_A, "wrkspc_devtools", "devtools-ci-bot", _HAIKU3, 16, "office", 6000, 200, 0.40),
    KeySpec(_A, "wrkspc_research", "research-evals", _OPUS3, 240, "jobs", 8000, 1200, 0.30),
    KeySpec(_A, "wrkspc_research", "research-agent", _SONNET35, 140, "bursty", 20000, 1500, 0.65),
    KeySpec(_A, "wrkspc_research", "research-labeling-batch", _HAIKU35, 60, "nightly", 3000, 300, batch=True),
    KeySpec(_A, "wrkspc_support", "support-email", _SONNET35, 190, "flat", 9000, 500, 0.50),
    KeySpec(_A, "wrkspc_support", "support-router", _HAIKU3, 18, "flat", 1500, 30, 0.30),
    KeySpec(_A, "wrkspc_support", "support-kb-writer", _HAIKU3, 9, "office", 5000, 900, 0.20),
    KeySpec(_A, "wrkspc_legal", "legal-contracts", _SONNET35, 70, "office", 60000, 1200, 0.45),
    KeySpec(_A, "wrkspc_legal", "legal-summarize", _HAIKU35, 9, "office", 12000, 600, 0.30),
    KeySpec(_A, "wrkspc_growth", "growth-ad-copy", _HAIKU35, 26, "office", 2000, 400, 0.25),
    KeySpec(_A, "wrkspc_growth", "growth-translate", _SONNET35, 45, "bursty", 3000, 3000, 0.10),
    KeySpec(_A, "wrkspc_research", "research-sim", _SONNET4, 260, "flat", 15000, 1000, 0.70, start="2025-07-14"),
)
# (provider, project, from model, to model, ISO day it starts): every key of the project on the model moves.
MIGRATIONS = (
    (_A, "wrkspc_support", _HAIKU3, _HAIKU35, "2024-12-02"),
    (_O, "proj_data", _GPT4O, _O3_MINI, "2025-03-03"),
    (_O, "proj_helpdesk", _GPT4O, _GPT41, "2025-05-19"),
    (_A, "wrkspc_devtools", _SONNET35, _SONNET4, "2025-06-02"),
    (_A, "wrkspc_research", _OPUS3, _OPUS4, "2025-06-16"),
    (_O, "proj_search", _GPT4O_MINI, _GPT41_MINI, "2025-07-07"),
    (_A, "wrkspc_support", _HAIKU35, _HAIKU45, "2025-10-20"),
)
# (provider, project, key name, ISO day): the key is replaced by ``{name}-v2``.
ROTATIONS = ((_O, "proj_search", "search-answer", "2024-11-12"), (_A, "wrkspc_legal", "legal-contracts", "2025-04-08"))


def key_id(provider: str, name: str) -> str:
    """An id as each vendor's usage endpoint names a key (OpenAI ``key_…``, Anthropic ``apikey_01…``)."""
    return f"key_{name}" if provider == _O else f"apikey_01{name}"


def price(provider: str, model: str) -> dict[str, float]:
    """USD per token of ``model``, by token type (0 for a type it does not have)."""
    prefix = max((p for p in PRICES[provider] if model.startswith(p)), key=len)
    values = PRICES[provider][prefix]
    return {t: (v or 0.0) / 1e6 for t, v in zip(("input", "cached_input", "output", "cache_write_5m"), values)}


def price_table() -> PriceTable:
    """These prices as a ``PriceTable``, for ``to_focus``'s ListCost."""
    rows = [{"provider": provider.lower(), "model": model, "token_type": token_type, "usd_per_unit": str(v),
             "pricing_unit": "1000000 Tokens"}
            for provider, models in PRICES.items() for model, values in models.items()
            for token_type, v in zip(("input", "cached_input", "output", "cache_write_5m"), values) if v is not None]
    return PriceTable(rows, "ai_bill.PRICES")


@dataclass
class _Key:
    """One API key (or the console) over the span: what it sends each day, normally (``base``) and
    with the anomalies injected (``live``): requests, prompt and output tokens per request, the
    shares of the prompt read from and written to the cache, a price factor per token type and each
    model's share of the requests."""

    provider: str
    project: str
    key_id: str | None
    name: str
    profile: str
    batch: bool
    base: dict
    live: dict | None = None
    first: int = 0

    def state(self, injected: bool) -> dict:
        return self.live if injected and self.live is not None else self.base

    def models(self, injected: bool = True) -> list[str]:
        return [m for m, share in self.state(injected)["share"].items() if share.any()]

    def tokens(self, injected: bool = True) -> dict[str, dict[str, np.ndarray]]:
        """model → token type (and ``requests``) → float quantities a day."""
        s = self.state(injected)
        out = {}
        for model, share in s["share"].items():
            requests = s["requests"] * share
            prompt = requests * s["prompt"]
            cached, write = prompt * s["cached"], prompt * s["write"]
            out[model] = {"requests": requests, "input": prompt - cached - write, "cached_input": cached,
                          "cache_write_5m": write, "output": requests * s["output"]}
        return out

    def cost(self, injected: bool = True) -> dict[str, np.ndarray]:
        """model → USD a day."""
        s = self.state(injected)
        tier = 0.5 if self.batch else 1.0
        out = {}
        for model, q in self.tokens(injected).items():
            unit = price(self.provider, model)
            out[model] = sum(q[t] * unit[t] * tier * s["price"][t] for t in TOKEN_TYPES)
        return out

    def total(self, injected: bool = True) -> np.ndarray:
        return sum(self.cost(injected).values())

    def edit(self) -> dict:
        """The injected state, made on first use."""
        if self.live is None:
            self.live = copy.deepcopy(self.base)
        return self.live


@dataclass
class _Bill:
    days: pd.DatetimeIndex
    rng: np.random.Generator
    keys: list[_Key] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    busy: dict = field(default_factory=lambda: defaultdict(list))  # series → reserved day ranges

    @property
    def n(self) -> int:
        return len(self.days)

    def day(self, iso: str) -> int:
        return int(np.searchsorted(self.days, pd.Timestamp(iso)))

    # --- the normal bill ----------------------------------------------------------------------

    def _requests(self, profile: str, level: float) -> np.ndarray:
        """A key's requests a day around ``level``, by profile: growth, weekly habit, noise."""
        rng, n = self.rng, self.n
        t = np.arange(n)
        weekday = self.days.weekday.to_numpy()
        weekend = weekday >= 5
        growth = np.exp(rng.uniform(-0.1, 0.7) * t / 365.25)
        ar, shocks = np.zeros(n), rng.normal(0, 1, n)
        sigma = rng.uniform(0.04, 0.15)
        for i in range(1, n):
            ar[i] = 0.5 * ar[i - 1] + sigma * shocks[i]
        noise = np.exp(ar - sigma**2 / 2)
        if profile == "flat":
            habit = np.where(weekend, rng.uniform(0.7, 0.95), 1.0)
        elif profile == "office":
            holidays = ((self.days.month == 12) & (self.days.day >= 24)) | ((self.days.month == 1) & (self.days.day == 1))
            habit = np.where(weekend, rng.uniform(0.12, 0.4), 1.0) * np.where(holidays, rng.uniform(0.25, 0.45), 1.0)
        elif profile == "bursty":
            s = rng.uniform(0.25, 0.45)
            noise = np.exp(s * np.clip(rng.standard_t(4, n), -4, 5) - s**2 / 2)
            habit = np.where(weekend, rng.uniform(0.5, 0.9), 1.0)
        elif profile == "nightly":
            habit = np.where(weekend, 0.0, 1.0)
            noise = np.exp(rng.normal(0, rng.uniform(0.08, 0.2), n))
        elif profile == "jobs":
            runs = rng.random(n) < rng.uniform(0.2, 0.45)
            habit = np.where(runs, 1.0, 0.0)
            s = rng.uniform(0.2, 0.4)
            noise = np.exp(rng.normal(0, s, n) - s**2 / 2)
        else:
            raise ValueError(profile)
        return level * growth * habit * noise

    def _drift(self, mean: float, sigma: float = 0.04) -> np.ndarray:
        """Tokens per request: a slow drift (prompts grow with features) and day-to-day noise."""
        rng, n = self.rng, self.n
        slow = np.cumsum(rng.normal(rng.uniform(0.0, 0.3) / 365.25, 0.004, n))
        return mean * np.exp(slow + rng.normal(0, sigma, n))

    def _hit_rate(self, mean: float) -> np.ndarray:
        """A prompt cache's hit rate wandering around ``mean``: a logit AR(1) of the prompts' churn."""
        if mean <= 0:
            return np.zeros(self.n)
        rng, n = self.rng, self.n
        slow, sigma = np.zeros(n), rng.uniform(0.04, 0.1)
        for i in range(1, n):
            slow[i] = 0.97 * slow[i - 1] + rng.normal(0, sigma)
        logit = np.log(mean / (1 - mean)) + slow + rng.normal(0, 0.08, n)
        return 1 / (1 + np.exp(-logit))

    def add_key(self, spec: KeySpec) -> _Key:
        n = self.n
        prompt, output = self._drift(spec.prompt), self._drift(spec.output) if spec.output else np.zeros(n)
        cached = self._hit_rate(spec.cached)
        write = (self.rng.uniform(0.02, 0.06) * np.exp(self.rng.normal(0, 0.15, n)) if spec.provider == _A and spec.cached
                 else np.zeros(n))
        unit = price(spec.provider, spec.model)
        per_request = (prompt[0] * ((1 - cached[0] - write[0]) * unit["input"] + cached[0] * unit["cached_input"]
                                    + write[0] * unit["cache_write_5m"]) + output[0] * unit["output"])
        per_request *= 0.5 if spec.batch else 1.0
        level = spec.usd_per_day * self.rng.uniform(0.8, 1.25) / per_request
        requests = self._requests(spec.profile, level)
        first = self.day(spec.start) if spec.start else 0
        if spec.start:  # adopted from a few dollars a day to its level over about six weeks
            t = np.arange(n) - first
            requests = requests * np.where(t >= 0, 1 / (1 + np.exp(-(t - 21) / 5)), 0.0)
        base = {"requests": requests, "prompt": prompt, "output": output, "cached": cached, "write": write,
                "price": {t: np.ones(n) for t in TOKEN_TYPES}, "share": {spec.model: np.ones(n)}}
        k = _Key(spec.provider, spec.project, None if spec.console else key_id(spec.provider, spec.name), spec.name,
                 spec.profile, spec.batch, base, first=first)
        self.keys.append(k)
        if spec.start and first < self.n:
            end = min(first + 41, self.n - 1)
            self.reserve([("key", k.key_id), ("pm", k.provider, k.project, spec.model)], first, end)
            self.label("gradual_adoption", k.provider, k.project, spec.model, k.key_id, first, end, 0.0,
                       f"{k.key_id} adopted on {spec.model}: 5 % to 95 % of its level over six weeks", benign=True)
        return k

    # --- series and their reservations --------------------------------------------------------

    def pm_keys(self, provider: str, project: str, model: str, injected: bool = False) -> list[_Key]:
        return [k for k in self.keys if k.provider == provider and k.project == project
                and model in k.state(injected)["share"]]

    def pm_cost(self, provider: str, project: str, model: str, injected: bool = False) -> np.ndarray:
        """A project × model series' cost a day."""
        return sum((k.cost(injected).get(model, np.zeros(self.n)) for k in self.pm_keys(provider, project, model, injected)),
                   np.zeros(self.n))

    def project_models(self, provider: str, project: str) -> set[str]:
        """Every model the project bills at any time (injected models included)."""
        return {m for k in self.keys if k.provider == provider and k.project == project
                for s in (k.base, k.live) if s is not None for m, share in s["share"].items() if share.any()}

    def free(self, series: list, lo: int, hi: int) -> bool:
        return all(hi < a or lo > b for s in series for a, b in self.busy[s])

    def reserve(self, series: list, lo: int, hi: int) -> None:
        for s in series:
            self.busy[s].append((lo - QUIET_DAYS, hi + QUIET_DAYS))

    # --- labels ---------------------------------------------------------------------------------

    def label(self, kind: str, provider: str, project: str, model: str, key: str | None, lo: int, hi: int,
              impact: float, description: str, benign: bool = False, also: tuple[str, ...] = ()) -> None:
        self.labels.append({
            "event_id": len(self.labels) + 1, "kind": kind, "benign": benign,
            "start": self.days[lo].date(), "end": self.days[hi].date(), "provider": provider,
            "sub_account_id": project, "service_name": model,
            "series_key": series_key("sub_account_service", provider, project, model),
            "team": TEAMS.get(project, "untagged"), "expected_impact_usd": round(float(impact), 2),
            "baseline_usd_per_day": round(float(self.pm_cost(provider, project, model)[lo:hi + 1].mean()), 2),
            "description": description, "api_key_id": key, "also_series": ";".join(also) or None,
        })

    # --- benign events --------------------------------------------------------------------------

    def migrate(self, provider: str, project: str, old: str, new: str, iso: str) -> None:
        """Every key of ``project`` on ``old`` moves to ``new`` over three to five weeks."""
        rng, lo = self.rng, self.day(iso)
        if lo >= self.n - 7:
            return
        mid, scale = rng.uniform(14, 24), rng.uniform(2.5, 3.5)
        t = np.arange(self.n) - lo
        moved = np.where(t >= 0, 1 / (1 + np.exp(-(t - mid) / scale)), 0.0)
        done = int(lo + mid + 3 * scale)  # ~95 % moved
        tail_end = self.n if rng.random() < 0.5 else min(self.n, done + int(rng.integers(14, 43)))
        straggle = rng.uniform(0.01, 0.03)
        moved = np.where(t > done - lo, 1 - straggle, moved)
        moved[tail_end:] = 1.0
        keys = self.pm_keys(provider, project, old)
        for k in keys:
            share = k.base["share"]
            share[new] = share.get(new, np.zeros(self.n)) + share[old] * moved
            share[old] = share[old] * (1 - moved)
        end = min(self.n - 1, tail_end + 7 if tail_end < self.n else done + 14)
        self.reserve([("pm", provider, project, old), ("pm", provider, project, new)] + [("key", k.key_id) for k in keys],
                     lo, end)
        also = [series_key("sub_account_service", provider, project, old)]
        also += [series_key("api_key", provider, project, k.key_id) for k in keys if k.key_id]
        tail = "to the end of the bill" if tail_end >= self.n else f"until {self.days[tail_end - 1].date()}"
        self.label("model_migration", provider, project, new, None, lo, end, 0.0,
                   f"{len(keys)} key(s) of {project} move from {old} to {new} over ~{(done - lo) // 7} weeks; "
                   f"{straggle:.0%} straggle on {old} {tail}", benign=True, also=tuple(also))

    def rotate(self, provider: str, project: str, name: str, iso: str) -> None:
        """The key is replaced by a new one on ``iso`` (part of that day on each)."""
        d = self.day(iso)
        old = next(k for k in self.keys if k.provider == provider and k.project == project and k.name == name)
        new = copy.deepcopy(old)
        new.name, new.key_id, new.first = f"{name}-v2", key_id(provider, f"{name}-v2"), d
        cut = np.arange(self.n) >= d
        part = self.rng.uniform(0.2, 0.8)
        old.base["requests"] = np.where(cut, 0.0, old.base["requests"])
        old.base["requests"][d] = new.base["requests"][d] * part
        new.base["requests"] = np.where(cut, new.base["requests"], 0.0)
        new.base["requests"][d] *= 1 - part
        self.keys.append(new)
        self.reserve([("key", old.key_id), ("key", new.key_id)] + [("pm", provider, project, m) for m in old.models(False)],
                     d, d + 9)
        self.label("key_rotation", provider, project, old.models(False)[0], new.key_id, d, min(d + 9, self.n - 1), 0.0,
                   f"{old.key_id} rotated: the same traffic on {new.key_id}", benign=True,
                   also=(series_key("api_key", provider, project, old.key_id),))

    # --- anomalies: each returns whether it found a key and days for itself ----------------------

    def _candidates(self, fits, length: int):
        """(key, first day) pairs after the warm-up, ``length`` days long, the key on one model then
        and both it and its project × model free, that ``fits``; tried in random order."""
        for _ in range(60):
            lo = int(self.rng.integers(WARM_UP_DAYS, self.n - length - 14))
            hi = lo + length - 1
            for i in self.rng.permutation(len(self.keys)):
                k = self.keys[i]
                if k.key_id is None or lo - 60 < k.first:
                    continue
                models = [m for m, share in k.base["share"].items() if share[lo - 35:hi + 1].any()]
                if len(models) != 1 or k.base["share"][models[0]][lo - 35:hi + 1].min() < 0.999:
                    continue
                series = [("key", k.key_id), ("pm", k.provider, k.project, models[0])]
                if self.free(series, lo, hi) and fits(k, models[0], lo, hi):
                    yield k, models[0], lo, hi, series
                    return

    def _inject(self, kind: str, length: int, eligible, change, describe, labelled=None) -> bool:
        """Place ``change(key, state, model, lo, hi)`` on an ``eligible(key, model, lo, hi)`` key so
        that its excess lands in IMPACT_USD; label it (on ``labelled(key, model)``'s model, default
        the key's)."""
        def fits(k: _Key, model: str, lo: int, hi: int) -> bool:
            if not eligible(k, model, lo, hi):
                return False
            trial = copy.deepcopy(k)
            change(trial, trial.edit(), model, lo, hi)
            excess = float((trial.total(True) - k.total(True))[lo:hi + 1].sum())
            return IMPACT_USD[0] <= excess <= IMPACT_USD[1]

        for k, model, lo, hi, series in self._candidates(fits, length):
            before = k.total(True)
            change(k, k.edit(), model, lo, hi)
            excess = float((k.total(True) - before)[lo:hi + 1].sum())
            at, also = labelled(k, model) if labelled else (model, ())
            self.reserve(series + [("pm", k.provider, k.project, at)], lo, hi)
            self.label(kind, k.provider, k.project, at, k.key_id, lo, hi, excess, describe(k, model), also=also)
            return True
        return False

    def runaway_key(self) -> bool:
        rng = self.rng
        hours, factor, start_hour = int(rng.integers(3, 61)), float(rng.uniform(3, 20)), int(rng.integers(0, 24))
        length = (start_hour + hours - 1) // 24 + 1
        # The share of each day the loop ran.
        covered = np.array([min(24, start_hour + hours - 24 * d) - max(0, start_hour - 24 * d) for d in range(length)]) / 24

        def change(k, s, model, lo, hi):
            s["requests"][lo:hi + 1] *= 1 + (factor - 1) * covered

        return self._inject("runaway_key", length, lambda k, m, lo, hi: k.profile in ("flat", "office", "bursty")
                            and k.base["requests"][lo:hi + 1].min() > 0, change,
                            lambda k, m: f"retry loop on {k.key_id}: {factor:.0f}× its requests for {hours} hours from "
                                         f"{start_hour:02d}:00")

    def cache_collapse(self) -> bool:
        """Alternately on each vendor (their caches fail differently), else on either."""
        wanted = (_O, _A)[sum(label["kind"] == "cache_collapse" for label in self.labels) % 2]
        return self._cache_collapse(wanted) or self._cache_collapse(None)

    def _cache_collapse(self, provider: str | None) -> bool:
        rng = self.rng
        length = int(rng.integers(3, 13))
        now = np.clip(rng.uniform(0.02, 0.08) * np.exp(rng.normal(0, 0.2, length)), 0.0, 0.1)  # what still hits

        def eligible(k, model, lo, hi):
            if provider not in (None, k.provider):
                return False
            if k.base["cached"][lo - 28:lo].mean() < 0.45 or k.base["cached"][lo:hi + 1].min() < 0.4:
                return False
            own = k.tokens(False)[model]
            mine = (own["input"] + own["cached_input"])[lo - 28:hi + 1].sum()
            everyone = sum((q := o.tokens(False)[model])["input"][lo - 28:hi + 1].sum()
                           + q["cached_input"][lo - 28:hi + 1].sum() for o in self.pm_keys(k.provider, k.project, model))
            return mine >= 0.8 * everyone

        def change(k, s, model, lo, hi):
            lost = s["cached"][lo:hi + 1] - now[:hi + 1 - lo]
            s["cached"][lo:hi + 1] = now[:hi + 1 - lo]
            if k.provider == _A:
                s["write"][lo:hi + 1] += lost  # a prefix that changes each request: written, never read

        return self._inject("cache_collapse", length, eligible, change,
                            lambda k, m: f"{k.key_id}'s prompt cache stops hitting (cached share {now.mean():.0%}); "
                                         + ("the prefix is written to the cache every request" if k.provider == _A
                                            else "the prefix is billed as input"))

    def unit_cost_rise(self) -> bool:
        rng = self.rng
        length = int(rng.integers(3, 15))

        def how(k):
            if k.batch:
                return {t: 2.0 for t in TOKEN_TYPES}, "batch traffic sent to the standard tier (2× the price)"
            if k.provider == _A:
                return ({"input": 2.0, "cached_input": 2.0, "cache_write_5m": 2.0, "output": 1.5},
                        "prompts past 200k tokens billed at the long-context rate (input 2×, output 1.5×)")
            return {t: 1.75 for t in TOKEN_TYPES}, "requests sent with priority processing (1.75× the price)"

        chosen = {}

        def eligible(k, model, lo, hi):
            alone = [o for o in self.pm_keys(k.provider, k.project, model) if o.cost(False)[model][lo - 28:hi + 29].any()]
            chosen["how"] = how(k)
            return alone == [k] and not model.startswith("text-embedding")

        def change(k, s, model, lo, hi):
            for t, f in chosen["how"][0].items():
                s["price"][t][lo:hi + 1] *= f

        return self._inject("unit_cost_rise", length, eligible, change, lambda k, m: f"{k.key_id}: {how(k)[1]}")

    def cost_per_request(self) -> bool:
        rng = self.rng
        length, factor = int(rng.integers(3, 15)), float(rng.uniform(2, 5))

        def change(k, s, model, lo, hi):
            # The added part of the prompt is never cached: the cached and written tokens stay.
            s["cached"][lo:hi + 1] /= factor
            s["write"][lo:hi + 1] /= factor
            s["prompt"][lo:hi + 1] *= factor

        return self._inject("cost_per_request", length, lambda k, m, lo, hi: k.base["requests"][lo:hi + 1].sum() > 0
                            and not m.startswith("text-embedding"), change,
                            lambda k, m: f"{k.key_id}'s prompts {factor:.1f}× longer, the same requests")

    def model_switch(self) -> bool:
        rng = self.rng
        length, first_share = int(rng.integers(2, 8)), float(rng.uniform(0.3, 0.9))
        chosen = {}

        def eligible(k, model, lo, hi):
            if model not in DEARER or k.profile not in ("flat", "office", "bursty"):
                return False
            used = self.project_models(k.provider, k.project)
            options = [m for m in DEARER[model] if m not in used]
            if not options:
                return False
            chosen["to"] = options[int(rng.integers(len(options)))]
            return self.free([("pm", k.provider, k.project, chosen["to"])], lo, hi)

        def change(k, s, model, lo, hi):
            new = np.zeros(self.n)
            new[lo:hi + 1] = 1.0
            new[lo] = first_share
            s["share"][chosen["to"]] = new
            s["share"][model] = s["share"][model] * (1 - new)

        def describe(k, model):
            ratio = price(k.provider, chosen["to"])["input"] / price(k.provider, model)["input"]
            return f"{k.key_id} switched from {model} to {chosen['to']} ({ratio:.0f}× the input price) within a day"

        # Labelled on the new model's series; the old model's drop is about it too.
        return self._inject("model_switch", length, eligible, change, describe,
                            lambda k, model: (chosen["to"], (series_key("sub_account_service", k.provider, k.project,
                                                                        model),)))

    def _new_key(self, provider: str, project: str, name: str, model: str, lo: int, hi: int, usd: np.ndarray,
                 prompt: float, output: float) -> _Key:
        """A key that spends ``usd`` a day on ``model`` in [lo, hi] (none in the bill without anomalies)."""
        n = self.n
        unit = price(provider, model)
        per_request = prompt * unit["input"] + output * unit["output"]
        requests = np.zeros(n)
        requests[lo:hi + 1] = usd / per_request
        base = {"requests": np.zeros(n), "prompt": np.full(n, prompt), "output": np.full(n, output),
                "cached": np.zeros(n), "write": np.zeros(n), "price": {t: np.ones(n) for t in TOKEN_TYPES},
                "share": {model: np.ones(n)}}
        k = _Key(provider, project, key_id(provider, name), name, "leak", False, base, first=lo)
        k.edit()["requests"] = requests
        self.keys.append(k)
        return k

    def leaked_key(self) -> bool:
        rng = self.rng
        length = int(rng.integers(2, 9))
        daily = float(rng.uniform(60, 450)) * 1.3 ** np.arange(length) * np.exp(rng.normal(0, 0.1, length))
        if not IMPACT_USD[0] <= daily.sum() <= IMPACT_USD[1]:
            daily *= float(np.clip(daily.sum(), *IMPACT_USD)) / daily.sum()
        provider = (_O, _A)[int(rng.integers(2))]
        projects = sorted({k.project for k in self.keys if k.provider == provider and k.key_id and k.project in TEAMS})
        for _ in range(60):
            project = projects[int(rng.integers(len(projects)))]
            lo = int(rng.integers(WARM_UP_DAYS, self.n - length - 14))
            hi = lo + length - 1
            used = sorted(m for m in self.project_models(provider, project)
                          if self.pm_cost(provider, project, m)[lo - 28:lo].any() and not m.startswith("text-embedding"))
            if rng.random() < 0.5 and used:
                model = used[int(rng.integers(len(used)))]
            else:
                model = LEAK_MODELS[provider][int(rng.integers(len(LEAK_MODELS[provider])))]
                if model in self.project_models(provider, project) and model not in used:
                    continue  # a model the project left: its series would not be new, nor steady
            if not self.free([("pm", provider, project, model)], lo, hi) or \
                    any(k.batch for k in self.pm_keys(provider, project, model)):
                continue  # busy; or a batch key shares it, whose series would take part of the leak's cost
            name = f"{zlib.crc32(f'{project}{lo}'.encode()):08x}"
            k = self._new_key(provider, project, name, model, lo, hi, daily, 1800.0, 600.0)
            self.reserve([("pm", provider, project, model), ("key", k.key_id)], lo, hi)
            self.label("leaked_key", provider, project, model, k.key_id, lo, hi, daily.sum(),
                       f"unknown key {k.key_id} spending ${daily[0]:,.0f} to ${daily[-1]:,.0f} a day on {model} "
                       f"in {project}")
            return True
        return False

    def new_project(self) -> bool:
        rng = self.rng
        length = int(rng.integers(3, 9))
        provider = (_O, _A)[int(rng.integers(2))]
        model = ((_GPT4O, _GPT41, _O3_MINI) if provider == _O else (_SONNET4, _OPUS4, _HAIKU45))[int(rng.integers(3))]
        daily = float(rng.uniform(120, 500)) * np.exp(rng.normal(0, 0.12, length))
        if not IMPACT_USD[0] <= daily.sum() <= IMPACT_USD[1]:
            daily *= float(np.clip(daily.sum(), *IMPACT_USD)) / daily.sum()
        lo = int(rng.integers(WARM_UP_DAYS, self.n - length - 14))
        hi = lo + length - 1
        project = f"proj_{zlib.crc32(f'new{lo}'.encode()) % 10**6:06d}" if provider == _O else \
            f"wrkspc_{zlib.crc32(f'new{lo}'.encode()) % 10**6:06d}"
        two = rng.random() < 0.5
        shares = (0.7, 0.3) if two else (1.0,)
        keys = [self._new_key(provider, project, f"{project[-6:]}-{i}", model, lo, hi, daily * share, 2500.0, 500.0)
                for i, share in enumerate(shares)]
        self.label("new_project", provider, project, model, keys[0].key_id, lo, hi, daily.sum(),
                   f"unregistered {project}: {len(keys)} key(s) spending ${daily.mean():,.0f} a day on {model}",
                   also=tuple(series_key("api_key", provider, project, k.key_id) for k in keys[1:]))
        return True


def _lines(bill: _Bill, injected: bool) -> tuple[dict[str, list[CostLine]], dict[str, list[UsageLine]]]:
    """Each vendor's cost and usage lines, as its admin API gives them: costs per day, project, model
    and token type; usage per day, project, model, key and token type (requests on the first)."""
    starts = [datetime(d.year, d.month, d.day, tzinfo=timezone.utc) for d in bill.days]
    ends = starts[1:] + [starts[-1] + timedelta(days=1)]
    costs: dict[str, dict[tuple, np.ndarray]] = {p: {} for p in VENDORS}
    usage: dict[str, list[UsageLine]] = {p: [] for p in VENDORS}
    for k in bill.keys:
        s = k.state(injected)
        tier = 0.5 if k.batch else 1.0
        for model, q in k.tokens(injected).items():
            unit = price(k.provider, model)
            counts = {t: np.rint(q[t]).astype(np.int64) for t in TOKEN_TYPES}
            requests = np.rint(q["requests"]).astype(np.int64)
            for t in TOKEN_TYPES:
                if unit[t] <= 0 or not counts[t].any():
                    continue
                line = (k.project, model, t)
                money = counts[t] * unit[t] * tier * s["price"][t]
                costs[k.provider][line] = costs[k.provider].get(line, 0.0) + money
            first_type = np.full(bill.n, "", dtype=object)
            for t in reversed(TOKEN_TYPES):
                first_type = np.where((counts[t] > 0) & (unit[t] > 0), t, first_type)
            for d in np.flatnonzero(first_type != ""):
                for t in TOKEN_TYPES:
                    if counts[t][d] > 0 and unit[t] > 0:
                        usage[k.provider].append(UsageLine(
                            starts[d], ends[d], None if k.project == "default" else k.project, model, k.key_id, t,
                            int(counts[t][d]), int(requests[d]) if t == first_type[d] else None))
    cost_lines = {}
    for provider, lines in costs.items():
        cost_lines[provider] = [
            CostLine(starts[d], ends[d], None if project == "default" else project, model, t,
                     Decimal(f"{money[d]:.6f}"), f"{model}, {t.replace('_', ' ')}")
            for (project, model, t), money in sorted(lines.items()) for d in np.flatnonzero(money > 0)]
    return cost_lines, usage


def _as_focus(frame: pd.DataFrame) -> pd.DataFrame:
    """FOCUS columns in order and the x_ columns after them; timestamps in UTC, costs and
    quantities as floats (as the other bills' exports), requests as integers."""
    frame = frame.reindex(columns=[*FOCUS_COLUMNS, *X_COLUMNS])
    for column, kind in FOCUS_COLUMNS.items():
        if column in TIMESTAMP_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
        elif kind.startswith("DECIMAL"):
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame["x_Requests"] = frame["x_Requests"].astype("Int64")
    frame["x_GpuBusyPct"] = pd.to_numeric(frame["x_GpuBusyPct"]).astype(float)
    for column in ("x_IdleMinutes", "x_IdleStreakMinutes", "x_AbsentMinutes"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    for column in ("x_Model", "x_TokenType", "x_ApiKeyId", "x_CostSource"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def covers(flag_key: str, label) -> bool:
    """Whether a flag on ``flag_key`` is about ``label``: ``detection_metrics.covers`` (the label's
    project × model, its ``api_key_id`` and everything coarser: a flag's key components all equal
    the label's), or the same test on one of its ``also_series``."""
    if detection_metrics.covers(flag_key, label):
        return True
    also = label.get("also_series")
    return isinstance(also, str) and any(detection_metrics.covers(flag_key, detection_metrics.parse_key(key))
                                         for key in also.split(";") if key)


# --- the self-hosted GPU estate: minute-sampled utilisation through PrometheusSource.rows -------

GPU_PROVIDER = "Self-hosted"
A100, H100, L4 = "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA L4"
GPU_PRICES = {A100: Decimal("3.67"), H100: Decimal("6.98"), L4: Decimal("0.80")}  # USD an hour a GPU
GPU_METRIC = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"  # a ratio: PrometheusSource scales it by 100
# What is worth a page for an idle GPU: the project's policy (``Thresholds.gpu_idle_usd_an_hour``,
# restated here so a label never follows the code it measures): idle GPUs burning at least $2 an
# hour. An event's idle GPUs together below it are labelled benign (``idle_below_floor``).
PAGE_FLOOR_USD_AN_HOUR = 2.0
IDLE = (0.0, 0.05)  # an idle GPU's utilisation (ratio), well under the source's 10 % floor
LOOK = int(LOOK_BACK / STEP)  # the minutes each day's rows read before it (idle streaks reaching into its first hour)
DAY = 1440
# cluster → the UTC offset of its users' day (inference load, batch start times)
CLUSTERS = {"gpu-east": -5, "gpu-west": -8, "gpu-lab": 1}


@dataclass(frozen=True)
class NodeSpec:
    """A GPU node: its cluster (the SubAccountId), GPUs, team and habit (``inference``: diurnal
    load; ``training``: busy around the clock but for checkpoint dips; ``batch``: allocated only
    while a job runs); the ISO day it joined or left the cluster, if within the bill."""

    cluster: str
    name: str
    gpu_type: str
    gpus: int
    team: str
    habit: str
    added: str | None = None
    removed: str | None = None


NODES = (
    NodeSpec("gpu-east", "east-inf-a100-1", A100, 4, "inference", "inference"),
    NodeSpec("gpu-east", "east-inf-a100-2", A100, 4, "inference", "inference", removed="2025-08-18"),
    NodeSpec("gpu-east", "east-inf-h100-1", H100, 2, "inference", "inference", added="2025-07-28"),
    NodeSpec("gpu-east", "east-trn-h100-1", H100, 4, "ml-infra", "training"),
    NodeSpec("gpu-east", "east-trn-h100-2", H100, 4, "ml-infra", "training", added="2024-09-09"),
    NodeSpec("gpu-west", "west-inf-l4-1", L4, 2, "inference", "inference", removed="2024-12-09"),
    NodeSpec("gpu-west", "west-inf-l4-2", L4, 2, "inference", "inference"),
    NodeSpec("gpu-west", "west-inf-l4-3", L4, 2, "inference", "inference", added="2024-11-04"),
    NodeSpec("gpu-west", "west-trn-a100-1", A100, 4, "ml-infra", "training"),
    NodeSpec("gpu-west", "west-batch-a100-1", A100, 4, "data-science", "batch"),
    NodeSpec("gpu-lab", "lab-h100-1", H100, 4, "research-lab", "batch", added="2024-06-03"),
    NodeSpec("gpu-lab", "lab-l4-1", L4, 4, "research-lab", "batch", added="2024-06-03"),
)
# Batch habits: (share of weekdays with a job, of weekend days, local start hours, median hours, σ of log hours)
BATCH = {"west-batch-a100-1": (0.85, 0.3, (1, 4), 5.0, 0.45), "lab-h100-1": (0.55, 0.15, (9, 19), 9.0, 0.6),
         "lab-l4-1": (0.5, 0.1, (9, 18), 3.0, 0.5)}
# Idle GPUs (node: all its GPUs; gpu: one), in the order placed, with their hours (low, high):
# ten worth a page and two single L4s that are not.
IDLE_EVENTS = (
    ("west-batch-a100-1", "node", (6, 96)), ("lab-h100-1", "node", (6, 96)), ("east-trn-h100-1", "node", (6, 96)),
    ("west-trn-a100-1", "node", (6, 96)), ("east-inf-a100-1", "gpu", (6, 96)), ("east-trn-h100-2", "gpu", (6, 96)),
    ("west-batch-a100-1", "gpu", (6, 96)), ("lab-l4-1", "node", (24, 96)), ("east-inf-h100-1", "gpu", (6, 96)),
    ("east-inf-a100-2", "node", (6, 96)), ("west-inf-l4-2", "gpu", (6, 12)), ("lab-l4-1", "gpu", (8, 30)),
)
GPU_ANOMALY_KINDS = ("idle_gpu",)
GPU_BENIGN_KINDS = ("node_added", "node_removed", "idle_below_floor")
_WHY = {("batch", "node"): "its job ended and the allocation was not released",
        ("batch", "gpu"): "one pod of its job never exited",
        ("training", "node"): "its training run ended and the next did not start",
        ("training", "gpu"): "its training run went on without it",
        ("inference", "node"): "its deployment was scaled to zero and the node stayed reserved",
        ("inference", "gpu"): "a replica's process died and its GPU stayed reserved"}


def gpu_series_key(cluster: str, gpu_type: str) -> str:
    """The series the pipeline gives a cluster's GPUs of one type (``idle_gpu`` pages on it)."""
    return series_key("sub_account_service", GPU_PROVIDER, cluster, f"GPU {gpu_type}")


@dataclass
class _Estate:
    """The GPU nodes over the span, a minute at a time. Minute ``p`` is ``p − LOOK`` minutes from
    the first day's midnight UTC (the first day's look-back is ``p < LOOK``). Each node has a
    ``level`` a minute (NaN: not allocated, no samples; 0: idle; else its utilisation before
    noise) and exporter ``gaps``; ``overrides`` set GPUs idle over [lo, hi) (the anomalies' only
    in the injected bill, an inference replica's restart in both)."""

    days: pd.DatetimeIndex
    rng: np.random.Generator
    seed: int
    labels: list = field(default_factory=list)
    busy: dict = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self):
        self.n = len(self.days)
        self.span = LOOK + self.n * DAY
        self.alive, self.level, self.gaps, self.spread, self.sigma = {}, {}, {}, {}, {}
        self.jobs: dict[str, list[list[int]]] = {}  # batch: [allocated, start, end]
        self.low: dict[str, list[tuple[int, int]]] = defaultdict(list)  # node-wide idle minutes: dips, loading
        self.overrides: dict[str, list[tuple]] = defaultdict(list)  # (gpu or None, lo, hi, injected only)
        self.events: list[tuple] = []

    def minute(self, iso: str, hour: int) -> int:
        return LOOK + int((pd.Timestamp(iso) - self.days[0]).days) * DAY + 60 * hour

    def day_of(self, p: int) -> int:
        return (p - LOOK) // DAY

    def free(self, series, lo: int, hi: int) -> bool:
        return all(hi < a or lo > b for a, b in self.busy[series])

    def reserve(self, series, lo: int, hi: int) -> None:
        self.busy[series].append((lo - QUIET_DAYS, hi + QUIET_DAYS))

    # --- habits -------------------------------------------------------------------------------

    def schedule(self, spec: NodeSpec) -> None:
        rng = self.rng
        lo = max(0, self.minute(spec.added, 15)) if spec.added else 0
        hi = min(self.span, self.minute(spec.removed, 15)) if spec.removed else self.span
        self.alive[spec.name] = (lo, hi)
        level = np.full(self.span, np.nan, dtype=np.float32)
        self.level[spec.name] = level
        self.sigma[spec.name] = float(rng.uniform(0.02, 0.04))
        self.spread[spec.name] = rng.normal(0, 0.03 if spec.habit == "inference" else 0.01, spec.gpus)
        gaps = np.zeros(self.span, dtype=bool)
        alive_days = max(0, hi - lo) / DAY
        for start in rng.integers(lo, max(lo + 1, hi), rng.poisson(alive_days / 20)):  # an exporter gap every ~20 days
            gaps[start:start + int(rng.integers(5, 41))] = True
        self.gaps[spec.name] = gaps
        if hi <= lo:
            return
        if spec.habit == "inference":
            self._inference(spec, lo, hi)
        elif spec.habit == "training":
            self._training(spec, lo, hi)
        else:
            self._batch(spec, lo, hi)

    def _inference(self, spec: NodeSpec, lo: int, hi: int) -> None:
        """Load following its users' day (peak mid-afternoon, lighter at weekends), slowly growing;
        a replica restart now and then (a GPU at 0–5 % for 2–8 minutes)."""
        rng, offset = self.rng, CLUSTERS[spec.cluster]
        floor, peak, growth = rng.uniform(0.22, 0.32), rng.uniform(0.7, 0.85), rng.uniform(0.0, 0.1)
        p = np.arange(lo, hi)
        local = (p - LOOK) / 60.0 + offset  # hours since the first day's local midnight
        hour, weekday = local % 24, (self.days[0].weekday() + np.floor(local / 24).astype(int)) % 7
        shape = (0.5 + 0.5 * np.cos(2 * np.pi * (hour - 15) / 24)) ** 1.5
        weekly = np.where(weekday >= 5, rng.uniform(0.6, 0.8), 1.0)
        amplitude = (peak - floor) * weekly * (1 + growth * (p - LOOK) / DAY / 365)
        self.level[spec.name][lo:hi] = np.minimum(floor + amplitude * shape, 0.95)
        for g in range(spec.gpus):
            for start in rng.integers(lo, hi, rng.poisson((hi - lo) / DAY / 15)):
                self.overrides[spec.name].append((g, int(start), int(start + rng.integers(2, 9)), False))

    def _training(self, spec: NodeSpec, lo: int, hi: int) -> None:
        """Runs of 2–14 days back to back, each at its level, a checkpoint every 2–6 hours (all
        GPUs at 0–5 % for 4–25 minutes), the next run loading for 3–15 minutes."""
        rng, level, start = self.rng, self.level[spec.name], lo
        while start < hi:
            end = min(hi, start + int(rng.uniform(2, 14) * DAY))
            level[start:end] = rng.uniform(0.82, 0.97)
            every = int(rng.integers(120, 361))
            for dip in range(start + every, end - 60, every):
                self.low[spec.name].append((dip, dip + int(rng.integers(4, 26))))
            if end < hi:
                self.low[spec.name].append((end, end + int(rng.integers(3, 16))))
            start = end

    def _batch(self, spec: NodeSpec, lo: int, hi: int) -> None:
        """Jobs on some days, each allocating the node 2–12 minutes before it starts (0–5 %: the
        image and data loading) and releasing it when it ends; nothing is allocated between."""
        rng = self.rng
        weekday_share, weekend_share, (first, last), median, sigma = BATCH[spec.name]
        days = np.arange(self.day_of(lo), self.day_of(hi - 1) + 1)
        weekend = (self.days[0].weekday() + days) % 7 >= 5
        runs = rng.random(len(days)) < np.where(weekend, weekend_share, weekday_share)
        starts = LOOK + days * DAY + ((rng.uniform(first, last, len(days)) - CLUSTERS[spec.cluster]) * 60).astype(int)
        lengths = (median * np.exp(rng.normal(0, sigma, len(days))) * 60).astype(int).clip(30)
        leads = rng.integers(2, 13, len(days))
        jobs, free_from = [], lo
        for start, length, lead in zip(starts[runs], lengths[runs], leads[runs]):
            start = max(int(start), free_from + int(lead) + 10)  # queued behind the job before
            if start - lead < lo or start + length > hi:
                continue
            jobs.append([int(start - lead), int(start), int(start + length), float(rng.uniform(0.55, 0.95))])
            free_from = start + length
        self.jobs[spec.name] = jobs

    def write_levels(self) -> None:
        """The levels of the jobs (after the anomalies removed those their idle time took) and the
        node-wide idle minutes."""
        for name, jobs in self.jobs.items():
            for allocated, start, end, level in jobs:
                self.level[name][allocated:start] = 0.0
                self.level[name][start:end] = level
        for name, spans in self.low.items():
            for lo, hi in spans:
                self.level[name][lo:min(hi, self.alive[name][1])] = 0.0

    # --- events ---------------------------------------------------------------------------------

    def node_changes(self) -> None:
        """A node that joins or leaves within the bill: labelled on its series for two weeks."""
        for spec in NODES:
            for kind, iso in (("node_added", spec.added), ("node_removed", spec.removed)):
                if iso is None:
                    continue
                d = self.day_of(self.minute(iso, 0))
                if 0 <= d < self.n - 14:
                    self.reserve((spec.cluster, spec.gpu_type), d, d + 13)
                    self.events.append((kind, spec, None, d, d + 13))

    def idle(self, name: str, scope: str, hours: tuple[float, float]) -> bool:
        """``name``'s GPUs (all, or one) left allocated at 0–5 % for ``hours`` after what it ran
        ended, after the warm-up, its series quiet around it."""
        rng = self.rng
        spec = next(s for s in NODES if s.name == name)
        lo, hi = self.alive[name]
        series = (spec.cluster, spec.gpu_type)
        for _ in range(200):
            length = int(np.exp(rng.uniform(np.log(hours[0]), np.log(hours[1]))) * 60)
            d = int(rng.integers(WARM_UP_DAYS, max(WARM_UP_DAYS + 1, self.n - 16 - length // DAY)))
            if spec.habit == "batch":
                ends = [job for job in self.jobs[name] if self.day_of(job[2]) == d]
                if not ends:
                    continue
                t0 = ends[0][2]
            else:
                t0 = LOOK + d * DAY + int(rng.integers(0, DAY))
            t1 = t0 + length
            d0, d1 = self.day_of(t0), self.day_of(t1 - 1)
            if t0 < lo + 2 * DAY or t1 + DAY > hi or d1 >= self.n - 14 or not self.free(series, d0, d1):
                continue
            gpu = None if scope == "node" else int(rng.integers(spec.gpus))
            if spec.habit == "batch":  # the node stays allocated: no job of its starts before it is released
                self.jobs[name] = [job for job in self.jobs[name] if not t0 <= job[0] < t1 + 60]
            self.overrides[name].append((gpu, t0, t1, True))
            self.reserve(series, d0, d1)
            self.events.append(("idle", spec, gpu, t0, t1))
            return True
        return False

    # --- the minutes and the rows ---------------------------------------------------------------

    def values(self, index: int, spec: NodeSpec, lo: int, hi: int, injected: bool) -> np.ndarray:
        """Each GPU's utilisation (ratio) in minutes [lo, hi): NaN where it had no sample."""
        level = self.level[spec.name][lo:hi]
        mine = [o for o in self.overrides[spec.name] if o[1] < hi and o[2] > lo and (injected or not o[3])]
        shape = (spec.gpus, hi - lo)
        if np.isnan(level).all() and not any(o[3] for o in mine):
            return np.full(shape, np.nan)
        rng = np.random.default_rng([self.seed, 0x6770, index, self.day_of(lo) + 1])
        idle = rng.uniform(*IDLE, shape)
        out = level[None, :] + self.spread[spec.name][:, None] + rng.normal(0, self.sigma[spec.name], shape)
        out = np.where(level[None, :] == 0, idle, out)
        for gpu, a, b, _ in mine:
            a, b = max(a, lo) - lo, min(b, hi) - lo
            rows = slice(None) if gpu is None else slice(gpu, gpu + 1)
            out[rows, a:b] = idle[rows, a:b]
        out[:, self.gaps[spec.name][lo:hi]] = np.nan
        return out.clip(0.0, 1.0)

    def rows(self, injected: bool) -> pd.DataFrame:
        """The cluster's FOCUS rows, a day at a time through ``PrometheusSource.rows`` (the real
        source's code), each day's series starting at its look-back as a query would give them."""
        sources = {c: PrometheusSource(url="bench", account=c, gpu_prices=GPU_PRICES) for c in CLUSTERS}
        tails = {spec.name: self.values(i, spec, 0, LOOK, injected) for i, spec in enumerate(NODES)}
        frames = []
        for d in range(self.n):
            start = self.days[d].to_pydatetime().replace(tzinfo=timezone.utc)
            by_cluster = defaultdict(list)
            for i, spec in enumerate(NODES):
                lo = LOOK + d * DAY
                own = self.values(i, spec, lo, lo + DAY, injected)
                window, tails[spec.name] = np.concatenate([tails[spec.name], own], axis=1), own[:, -LOOK:]
                for g in range(spec.gpus):
                    if not np.isnan(window[g]).all():
                        labels = {"__name__": GPU_METRIC, "Hostname": spec.name, "gpu": str(g),
                                  "modelName": spec.gpu_type, "team": spec.team}
                        by_cluster[spec.cluster].append(Series(labels, window[g]))
            for cluster, series in by_cluster.items():
                frames.append(sources[cluster].rows(start, start + timedelta(days=1), series, 100.0, {}).frame)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(FOCUS_COLUMNS))

    def present(self, spec: NodeSpec, lo: int, hi: int, gpu: int | None = None, injected: bool = False) -> float:
        """GPU minutes of ``spec`` sampled in [lo, hi) (the minutes the source bills)."""
        allocated = ~np.isnan(self.level[spec.name][lo:hi])
        if injected:
            for g, a, b, _ in self.overrides[spec.name]:
                if g == gpu and a < hi and b > lo:
                    allocated[max(a, lo) - lo:min(b, hi) - lo] = True
        seen = allocated & ~self.gaps[spec.name][lo:hi]
        return float(seen.sum()) * (spec.gpus if gpu is None else 1)

    def series_cost(self, cluster: str, gpu_type: str, d0: int, d1: int) -> float:
        """The series' cost a day over days [d0, d1] without the anomalies."""
        lo, hi = LOOK + d0 * DAY, LOOK + (d1 + 1) * DAY
        minutes = sum(self.present(s, lo, hi) for s in NODES if s.cluster == cluster and s.gpu_type == gpu_type)
        return minutes / 60 * float(GPU_PRICES[gpu_type]) / (d1 - d0 + 1)

    def label_events(self, first_id: int) -> list[dict]:
        out = []
        for kind, spec, gpu, lo, hi in self.events:
            price = float(GPU_PRICES[spec.gpu_type])
            if kind == "idle":
                d0, d1 = self.day_of(lo), self.day_of(hi - 1)
                count = spec.gpus if gpu is None else 1
                rate = price * count
                impact = self.present(spec, lo, hi, gpu, injected=True) / 60 * price
                since = self.days[0] + pd.Timedelta(minutes=lo - LOOK)
                what = f"{spec.name} ({spec.gpus} × {spec.gpu_type})" if gpu is None else \
                    f"GPU {gpu} of {spec.name} ({spec.gpu_type})"
                benign = rate < PAGE_FLOOR_USD_AN_HOUR
                description = (f"{what} idle at 0–5 % for {(hi - lo) / 60:.1f} h from {since:%Y-%m-%d %H:%M} UTC: "
                               f"{_WHY[spec.habit, scope_of(gpu)]}; ${impact:,.2f} idle at ${rate:.2f} an hour")
                if benign:
                    description += f", under the ${PAGE_FLOOR_USD_AN_HOUR:.0f}/h floor: not worth a page"
                elif price < PAGE_FLOOR_USD_AN_HOUR:
                    description += f" together (${price:.2f} a GPU, each under ${PAGE_FLOOR_USD_AN_HOUR:.0f}/h)"
                kind = "idle_below_floor" if benign else "idle_gpu"
            else:
                d0, d1, impact, benign = lo, hi, 0.0, True
                description = (f"{spec.name} ({spec.gpus} × {spec.gpu_type}, {spec.habit}) "
                               + ("joins" if kind == "node_added" else "leaves") + f" {spec.cluster}")
            out.append({
                "event_id": first_id + len(out), "kind": kind, "benign": benign,
                "start": self.days[d0].date(), "end": self.days[d1].date(), "provider": GPU_PROVIDER,
                "sub_account_id": spec.cluster, "service_name": f"GPU {spec.gpu_type}",
                "series_key": gpu_series_key(spec.cluster, spec.gpu_type), "team": spec.team,
                "expected_impact_usd": round(impact, 2),
                "baseline_usd_per_day": round(self.series_cost(spec.cluster, spec.gpu_type, d0, d1), 2),
                "description": description, "api_key_id": None, "also_series": None})
        return out


def scope_of(gpu: int | None) -> str:
    return "node" if gpu is None else "gpu"


def _gpu_estate(days: pd.DatetimeIndex, seed: int, injected: bool, first_id: int) -> tuple[pd.DataFrame, list[dict]]:
    """The GPU clusters' FOCUS rows and labels; its own random stream, so the AI rows of a seed
    are the same with or without it."""
    estate = _Estate(days, np.random.default_rng([seed, 0x6770]), seed)
    for spec in NODES:
        estate.schedule(spec)
    estate.node_changes()
    if estate.n > WARM_UP_DAYS + 60:
        for name, scope, hours in IDLE_EVENTS:
            estate.idle(name, scope, hours)
    estate.write_levels()
    return estate.rows(injected), estate.label_events(first_id)


def generate(start: date, end: date, seed: int = 17, anomalies: bool = True, gpus: bool = True
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(line items with their x_ columns, labels) for the charge days in ``[start, end)``; the same
    for the same seed. ``anomalies=False``: the same bill without its anomalies (their labels still
    returned, to compare). ``gpus=False``: the API bill alone (the same rows and labels as with
    the GPUs: the estate draws from a random stream of its own)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range(start, end, freq="D", inclusive="left")
    bill = _Bill(days, rng)
    for spec in KEYS:
        bill.add_key(spec)
    for event in MIGRATIONS:
        if bill.day(event[4]) < bill.n:
            bill.migrate(*event)
    for event in ROTATIONS:
        if bill.day(event[3]) < bill.n - 10:
            bill.rotate(*event)
    made = {kind: 0 for kind in QUOTA}
    if bill.n > WARM_UP_DAYS + 60:
        for _ in range(4):
            for kind, quota in QUOTA.items():
                while made[kind] < quota and getattr(bill, kind)():
                    made[kind] += 1
    cost_lines, usage = _lines(bill, anomalies)
    prices = price_table()
    frames = [to_focus(vendor, cost_lines[p], usage[p], prices, TEAMS)[0] for p, vendor in VENDORS.items()]
    parts = [_as_focus(pd.concat(frames, ignore_index=True))]
    labels = pd.DataFrame(bill.labels, columns=AI_LABEL_COLUMNS[1:])
    labels = labels.sort_values(["start", "benign", "kind", "series_key"], kind="stable", ignore_index=True)
    if gpus:  # after the API bill's labels, numbered on from them (theirs unchanged)
        rows, gpu_labels = _gpu_estate(days, seed, anomalies, len(bill.labels) + 1)
        parts.append(_as_focus(rows))
        gpu_labels = pd.DataFrame(gpu_labels, columns=AI_LABEL_COLUMNS[1:]).astype(labels.dtypes.to_dict())
        labels = pd.concat([labels, gpu_labels.sort_values(["start", "benign", "kind", "series_key"], kind="stable")],
                           ignore_index=True)
    items = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    items = items.sort_values(["ChargePeriodStart", "SubAccountId", "ServiceName", "ChargeCategory"], kind="stable",
                              ignore_index=True)
    labels.insert(0, "label_id", [f"{k}-{n:03d}" for n, k in enumerate(labels["kind"], 1)])
    return items, labels[AI_LABEL_COLUMNS]

if __name__ == "__main__":
    run(__doc__, generate, seed=17)
