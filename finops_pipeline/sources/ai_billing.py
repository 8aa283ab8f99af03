"""AI API spend as FOCUS line items: the money from a vendor's cost endpoint, the volumes from its
usage endpoint, one row per token type.

Cost endpoints (OpenAI ``/organization/costs``, Anthropic ``/organizations/cost_report``) give
the money per day, project (workspace), model and token type, but not per API key or hour. Usage
endpoints give tokens per hour (or day), model, project and API key, but no money. ``to_focus``
joins them: a day's cost of one model and token type in one project is divided among that day's
usage rows of it in proportion to their tokens (one price, so this is exact up to price tiers
such as batch or long context), and every row is its money and its tokens. Where the cost
endpoint has nothing for a day yet (it lags usage by hours), the usage is priced with the price
table (``PriceTable``) and marked ``estimated``; once the day's costs arrive, a re-run replaces
the estimate with the actual figure. Usage a billed day's costs do not cover keeps its tokens and
no money, so nothing is counted twice; ``ListCost`` (tokens × list price) beside ``BilledCost``
shows the difference per day rather than hiding it.

Model, token type, API key, requests and cost source go in ``x_`` columns (packed into
``x_ProviderColumns``); the project or workspace → team map fills the ``team`` tag.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import pandas as pd

from finops_pipeline.errors import BillingDataError, SettingsError
from finops_pipeline.mapping_spec import parse_mapping
from finops_pipeline.sources.base import Rows
from finops_pipeline.sources.focus import FOCUS_COLUMNS, billing_period

# Canonical token types → (FOCUS SkuMeter, ConsumedUnit). Vendors' names map onto these.
METERS: dict[str, tuple[str, str]] = {
    "input": ("Input Tokens", "Tokens"),
    "cached_input": ("Cached Input Tokens", "Tokens"),
    "cache_write_5m": ("Cache Write Tokens (5 minutes)", "Tokens"),
    "cache_write_1h": ("Cache Write Tokens (1 hour)", "Tokens"),
    "output": ("Output Tokens", "Tokens"),
    "web_search": ("Web Search Requests", "Requests"),
    "images": ("Images", "Images"),
    "audio_characters": ("Audio Characters", "Characters"),
    "audio_seconds": ("Audio Seconds", "Seconds"),
}
PRICING_UNITS = {"Tokens": ("1000000 Tokens", Decimal(1_000_000)), "Requests": ("1000 Requests", Decimal(1000)),
                 "Images": ("1 Image", Decimal(1)), "Characters": ("1000000 Characters", Decimal(1_000_000)),
                 "Seconds": ("60 Seconds", Decimal(60))}  # speech is priced per 1M characters, transcription per minute
X_COLUMNS = ("x_Model", "x_TokenType", "x_ApiKeyId", "x_Requests", "x_CostSource")
CENT = Decimal("0.00000001")  # the eight decimals raw_billing keeps
MICRO = Decimal("0.000001")  # the cost marts' precision: shares of a cost are cut at it, so they add up there too
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


@dataclass(frozen=True)
class Vendor:
    """What every row of one vendor shares."""

    provider: str  # ProviderName, PublisherName and InvoiceIssuerName
    billing_account_id: str  # the organization
    sub_account_type: str  # Project, Workspace
    default_sub_account: str  # SubAccountId of spend outside any project or workspace


@dataclass(frozen=True)
class CostLine:
    """Money from a cost endpoint: one day (``start``..``end``), one project or workspace, one
    model and token type (None for costs that are not tokens: a web search is a token type
    ``web_search``, a fine-tuning job has none)."""

    start: datetime
    end: datetime
    sub_account: str | None
    model: str | None
    token_type: str | None
    amount: Decimal
    description: str


@dataclass(frozen=True)
class UsageLine:
    """Volumes from a usage endpoint: one bucket (an hour or a day), project, model, API key
    (None: console or playground usage) and token type."""

    start: datetime
    end: datetime
    sub_account: str | None
    model: str | None
    api_key_id: str | None
    token_type: str
    quantity: int
    requests: int | None = None  # the bucket's requests, on one token type's row of it


class PriceTable:
    """List prices in USD per pricing unit, by vendor, model and token type; a model takes the
    price of the longest model name it starts with (``gpt-4o-mini-2024-07-18``: ``gpt-4o-mini``).
    The project ships one (``ai_prices.csv``, with the date it was checked); ``FINOPS_AI_PRICES``
    names a CSV of the same columns whose rows replace the shipped ones."""

    COLUMNS = ("provider", "model", "token_type", "usd_per_unit", "pricing_unit")

    def __init__(self, rows: Iterable[Mapping[str, str]], origin: str = "ai_prices.csv"):
        self._prices: dict[tuple[str, str], list[tuple[str, Decimal]]] = defaultdict(list)
        for n, row in enumerate(rows, start=2):
            missing = [c for c in self.COLUMNS if not (row.get(c) or "").strip()]
            if missing:
                raise BillingDataError(f"{origin}: row {n} has no {', '.join(missing)}")
            if row["token_type"] not in METERS:
                raise BillingDataError(f"{origin}: row {n}: token_type {row['token_type']!r} is not one of {', '.join(METERS)}")
            unit = METERS[row["token_type"]][1]
            if row["pricing_unit"] != PRICING_UNITS[unit][0]:
                raise BillingDataError(f"{origin}: row {n}: a {row['token_type']} price is per {PRICING_UNITS[unit][0]!r}, "
                                       f"not {row['pricing_unit']!r}")
            try:
                price = Decimal(row["usd_per_unit"])
            except ArithmeticError:
                raise BillingDataError(f"{origin}: row {n}: usd_per_unit {row['usd_per_unit']!r} is not a number") from None
            key = (row["provider"].strip().lower(), row["token_type"])
            self._prices[key] = [p for p in self._prices[key] if p[0] != row["model"]] + [(row["model"].strip(), price)]
        for prices in self._prices.values():
            prices.sort(key=lambda p: -len(p[0]))

    @classmethod
    def load(cls, override: str | None = None) -> PriceTable:
        """The shipped table, with ``override`` (a CSV path) on top."""
        shipped = files("finops_pipeline.sources").joinpath("ai_prices.csv").read_text()
        rows = list(csv.DictReader(line for line in shipped.splitlines() if not line.startswith("#")))
        origin = "ai_prices.csv"
        if override:
            path = Path(override).expanduser()
            if not path.is_file():
                raise BillingDataError(f"FINOPS_AI_PRICES={override!r}: no such file")
            with path.open(newline="") as f:
                extra = list(csv.DictReader(line for line in f if not line.startswith("#")))
            cls(extra, str(path))  # its own row numbers in its errors
            rows += extra
            origin = f"ai_prices.csv and {path}"
        return cls(rows, origin)

    def price(self, provider: str, model: str | None, token_type: str) -> Decimal | None:
        """USD per one token (or request); None for a model the table does not know."""
        if not model:
            return None
        for prefix, price in self._prices.get((provider.lower(), token_type), ()):
            if model.startswith(prefix):
                return price / PRICING_UNITS[METERS[token_type][1]][1]
        return None


def parse_openai_line_item(text: str | None) -> tuple[str | None, str | None]:
    """OpenAI's free-text ``line_item`` (``gpt-4o-2024-08-06, input``, ``gpt-4o-mini, cached
    input``, ``dall-e-3, images``, ``tts-1, characters``, ``whisper-1, seconds``) as (model, token
    type); a line item without a recognisable token type keeps its whole text as the model and no
    token type (``fine-tuning, training``: a cost, not tokens)."""
    if not text or not text.strip():
        return None, None
    model, sep, kind = text.rpartition(",")
    kind = kind.strip().lower()
    if not sep or not model.strip():
        return text.strip(), None
    # Characters and seconds are never tokens, whatever else the kind says; "image" is images only
    # where the kind names no tokens ("image input" is a token-priced image model's input).
    if "character" in kind:
        return model.strip(), "audio_characters"
    if "second" in kind or "minute" in kind:
        return model.strip(), "audio_seconds"
    if "cached" in kind or "cache read" in kind:
        return model.strip(), "cached_input"
    if "output" in kind:
        return model.strip(), "output"
    if "input" in kind:
        return model.strip(), "input"
    if "image" in kind:
        return model.strip(), "images"
    return text.strip(), None


def base_model(model: str | None) -> str | None:
    """``model`` without its snapshot date (``gpt-4o-2024-08-06``: ``gpt-4o``), so a cost line
    and a usage line that name the same model differently still meet."""
    return _DATE_SUFFIX.sub("", model) if model else model


def to_focus(vendor: Vendor, costs: list[CostLine], usage: list[UsageLine], prices: PriceTable,
             teams: Mapping[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """FOCUS rows (costs and quantities as exact decimal text) for ``costs`` and ``usage``, and
    warnings: usage that could not be priced. See the module docstring."""
    billed_days = {c.start.date() for c in costs}
    by_key: dict[tuple, list[UsageLine]] = defaultdict(list)
    for u in usage:
        by_key[u.start.date(), u.sub_account, base_model(u.model), u.token_type].append(u)
    rows, used, warnings = [], set(), []
    grouped: dict[tuple, list[CostLine]] = defaultdict(list)
    for c in costs:
        grouped[c.start.date(), c.sub_account, base_model(c.model), c.token_type].append(c)
    for (day, sub_account, model, token_type), lines in sorted(grouped.items(), key=lambda kv: str(kv[0])):
        amount = sum((c.amount for c in lines), Decimal(0))
        if amount < 0:
            # A refund or a correction: money back, not usage to share among keys.
            warnings.append(f"{vendor.provider}: {day}, {sub_account or vendor.default_sub_account}, "
                            f"{lines[0].description!r}: a negative amount ({amount}), loaded as a credit")
            rows.append(_row(vendor, lines[0].start, lines[0].end, sub_account, lines[0].model, token_type, None, None,
                             None, amount, None, "actual", lines[0].description, teams, category="Credit"))
            continue
        if model is None and token_type is not None:  # a cost of every model (a web search): all usage of its type
            matched = [u for k, us in by_key.items() if k[0] == day and k[1] == sub_account and k[3] == token_type for u in us]
        else:
            matched = by_key.get((day, sub_account, model, token_type), []) if token_type else []
        matched = [u for u in matched if id(u) not in used]
        total = sum(u.quantity for u in matched)
        if not matched or total <= 0:
            rows.append(_row(vendor, lines[0].start, lines[0].end, sub_account, lines[0].model, token_type, None, None,
                             None, amount, None, "actual", lines[0].description, teams))
            continue
        shares = _split(amount, [u.quantity for u in matched])
        for u, share in zip(matched, shares):
            used.add(id(u))
            rows.append(_row(vendor, u.start, u.end, sub_account, u.model, token_type, u.api_key_id, u.quantity, u.requests,
                             share, prices.price(vendor.provider, u.model, token_type), "actual", lines[0].description, teams))
    unpriced: dict[str, int] = defaultdict(int)
    for u in usage:
        if id(u) in used:
            continue
        price = prices.price(vendor.provider, u.model, u.token_type)
        if u.start.date() in billed_days:
            # The day's costs are in and do not name this usage: its money, if any, is in a cost
            # row already. Tokens only; ListCost shows what the list price would have made of them.
            cost, source = Decimal(0), "actual"
        elif price is None:
            cost, source = Decimal(0), "estimated"
            unpriced[u.model or "(no model)"] += u.quantity
        else:
            cost, source = (price * u.quantity).quantize(CENT), "estimated"
        rows.append(_row(vendor, u.start, u.end, u.sub_account, u.model, u.token_type, u.api_key_id, u.quantity,
                         u.requests, cost, price, source, None, teams))
    for model, quantity in sorted(unpriced.items()):
        warnings.append(f"{vendor.provider}: no price for model {model!r} ({quantity:,} tokens or requests on days "
                        "without costs yet): counted at $0 until its costs arrive; add it to FINOPS_AI_PRICES")
    columns = list(FOCUS_COLUMNS) + list(X_COLUMNS)
    return pd.DataFrame(rows, columns=columns), warnings


def _split(amount: Decimal, weights: list[int]) -> list[Decimal]:
    """``amount`` in proportion to ``weights``, to the micro-dollar, summing to ``amount`` exactly
    (the rounding remainder goes to the largest share)."""
    total = sum(weights)
    shares = [(amount * w / total).quantize(MICRO) for w in weights]
    shares[max(range(len(weights)), key=weights.__getitem__)] += amount - sum(shares)
    return shares


def _row(vendor: Vendor, start: datetime, end: datetime, sub_account: str | None, model: str | None,
         token_type: str | None, api_key_id: str | None, quantity: int | None, requests: int | None, cost: Decimal,
         unit_price: Decimal | None, cost_source: str, description: str | None, teams: Mapping[str, str],
         category: str = "Usage") -> dict:
    month, next_month = billing_period(start.date())
    account = sub_account or vendor.default_sub_account
    meter, unit = METERS.get(token_type, (None, None)) if token_type else (None, None)
    pricing_unit, per = PRICING_UNITS[unit] if unit else (None, None)
    list_cost = (unit_price * quantity).quantize(CENT) if unit_price is not None and quantity is not None else cost
    team = teams.get(account)
    row = dict.fromkeys(FOCUS_COLUMNS)
    row.update(
        BillingAccountId=vendor.billing_account_id,
        BillingAccountType="Organization",
        SubAccountId=account,
        SubAccountName=account,  # the admin APIs give ids; a project's id is what its console shows
        SubAccountType=vendor.sub_account_type,
        BillingPeriodStart=month,
        BillingPeriodEnd=next_month,
        ChargePeriodStart=start,
        ChargePeriodEnd=end,
        BilledCost=str(cost),
        EffectiveCost=str(cost),
        ListCost=str(list_cost),
        ContractedCost=str(cost),
        BillingCurrency="USD",
        ProviderName=vendor.provider,
        PublisherName=vendor.provider,
        InvoiceIssuerName=vendor.provider,
        # The model is what is bought: series per project × model show a team moving to a dearer one.
        ServiceName=model or description or f"{vendor.provider} API",
        ServiceCategory="AI and Machine Learning",
        ServiceSubcategory="Generative AI",
        ResourceId=api_key_id,
        ResourceType="API Key" if api_key_id else None,
        SkuId=f"{model}:{token_type}" if model and token_type else None,
        SkuMeter=meter,
        ChargeCategory=category,
        ChargeDescription=description or f"{model or vendor.provider} {meter or 'usage'}",
        ChargeFrequency="Usage-Based",
        PricingCategory="Standard",
        PricingQuantity=str(Decimal(quantity) / per) if quantity is not None and per else None,
        PricingUnit=pricing_unit if quantity is not None else None,
        ConsumedQuantity=str(quantity) if quantity is not None else None,
        ConsumedUnit=unit if quantity is not None else None,
        Tags=json.dumps({"team": team} if team else {}),
        x_Model=model,
        x_TokenType=token_type,
        x_ApiKeyId=api_key_id,
        x_Requests=requests,
        x_CostSource=cost_source,
    )
    return row


def utc(value: datetime | date) -> datetime:
    """A date or datetime as an aware UTC datetime (a date: its midnight)."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# The most usage buckets a page may hold, by bucket width: both vendors' limits.
USAGE_BUCKETS_PER_PAGE = {"1d": 31, "1h": 168}


@dataclass(frozen=True)
class Bucket:
    """One time bucket of a cost or usage report, with where it is, for error messages."""

    start: datetime
    end: datetime
    where: str  # "OpenAI: GET …/organization/costs, bucket 3 (2026-03-02 00:00 UTC)"
    results: list


def read_buckets(api, path: str, params: Mapping[str, object], fields: tuple[str, str],
                 parse_time: Callable[[object], datetime], form: str) -> Iterator[Bucket]:
    """Every bucket of every page of ``api``'s report at ``path`` (``http_api.JsonApi``), its bounds
    read from ``fields`` by ``parse_time`` (``form`` names what they must be, for the error)."""
    for page in api.pages(path, params):
        data = page.get("data")
        if not isinstance(data, list):
            raise BillingDataError(f"{api.provider}: GET {api.base_url}{path}: the page has no 'data' list")
        for n, bucket in enumerate(data):
            where = f"{api.provider}: GET {api.base_url}{path}, bucket {n}"
            try:
                start, end = (parse_time(bucket[f]) for f in fields)
            except (KeyError, TypeError, ValueError):
                raise BillingDataError(f"{where}: {fields[0]} and {fields[1]} must be {form}, got "
                                       f"{bucket.get(fields[0])!r} and {bucket.get(fields[1])!r} "
                                       "(nothing of the window was written)") from None
            yield Bucket(start, end, f"{where} ({start:%Y-%m-%d %H:%M} UTC)", bucket.get("results") or [])


def in_window(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The rows charged in ``[start, end)``: a day's costs are read whole, a window may be less."""
    stamps = pd.to_datetime(frame["ChargePeriodStart"], utc=True)
    return frame[(stamps >= start) & (stamps < end)].reset_index(drop=True)


def parse_amount(value, where: str) -> Decimal:
    """A cost as an exact decimal (OpenAI sends a number, sometimes as a string; Anthropic a
    string); a ``BillingDataError`` naming ``where`` otherwise."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BillingDataError(f"{where} is {value!r}, not a number (nothing of the window was written)") from None
    if not number.is_finite():
        raise BillingDataError(f"{where} is {value!r}, not a number (nothing of the window was written)")
    return number


def parse_count(value, where: str) -> int | None:
    """A token or request count; None when absent."""
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BillingDataError(f"{where} is {value!r}, not a count (nothing of the window was written)") from None
    if number < 0:
        raise BillingDataError(f"{where} is {value!r}, a negative count (nothing of the window was written)")
    return number


def teams_setting(options: Mapping[str, str]) -> dict[str, str]:
    """``FINOPS_AI_TEAMS``: project or workspace id → team."""
    try:
        return parse_mapping(options.get("FINOPS_AI_TEAMS"), "FINOPS_AI_TEAMS", "project=team")
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def prices_setting(options: Mapping[str, str]) -> PriceTable:
    """The price table with ``FINOPS_AI_PRICES`` on top."""
    try:
        return PriceTable.load(options.get("FINOPS_AI_PRICES"))
    except BillingDataError as exc:
        raise SettingsError(str(exc)) from None


def secret(variable: str) -> str:
    """The key in ``variable``, read from the environment when a window is fetched (never kept in
    the settings, never logged); a ``SettingsError`` naming the variable when it is unset."""
    value = os.environ.get(variable, "").strip()
    if not value:
        raise SettingsError(f"{variable} is not set: the source needs it to read the vendor's usage and costs")
    return value


@dataclass(frozen=True)
class AdminApiSource:
    """What the AI vendors' admin-API sources share (see ``openai_admin``, ``anthropic_admin``): a
    base URL, the organization, the team map and prices from the settings, the key from the
    environment when a window is fetched; each reads its own cost and usage endpoints
    (``read``) and the rows are ``to_focus``'s. A subclass sets the class variables."""

    provider: ClassVar[str]  # ProviderName
    sub_account_type: ClassVar[str]  # Project, Workspace
    key_variable: ClassVar[str]  # the admin key's environment variable
    key_hint: ClassVar[str]  # where to get one, for the error
    url_variable: ClassVar[str]  # FINOPS_*_ADMIN_URL
    default_url: ClassVar[str]
    organization_variable: ClassVar[str]  # FINOPS_*_ORGANIZATION_ID
    base_url: str
    organization_id: str
    teams: Mapping[str, str] = field(default_factory=dict)
    prices: PriceTable | None = None

    @classmethod
    def from_settings(cls, settings):
        if cls.key_variable not in settings.secrets_set:
            raise SettingsError(f"FINOPS_SOURCE includes {cls.name}: set {cls.key_variable} to {cls.key_hint}")
        options = settings.source_options
        return cls(base_url=options.get(cls.url_variable) or cls.default_url,
                   organization_id=options.get(cls.organization_variable) or cls.name,
                   teams=teams_setting(options), prices=prices_setting(options))

    def fetch(self, window) -> Rows:
        start, end = utc(window.start), utc(window.end)
        # Costs come by the whole day: the days the window touches.
        days = (utc(start.date()), utc((end - timedelta(microseconds=1)).date() + timedelta(days=1)))
        costs, usage = self.read(secret(self.key_variable), days, (start, end), "1h" if window.grain.name == "hourly" else "1d")
        vendor = Vendor(self.provider, self.organization_id, self.sub_account_type, "default")
        frame, warnings = to_focus(vendor, costs, usage, self.prices or PriceTable.load(), self.teams)
        return Rows(in_window(frame, start, end), tuple(warnings))

    def read(self, key: str, days: tuple[datetime, datetime], window: tuple[datetime, datetime], width: str
             ) -> tuple[list[CostLine], list[UsageLine]]:
        """The cost lines of ``days`` and the usage lines of ``window`` in ``width`` buckets."""
        raise NotImplementedError
