"""Anthropic organization costs and usage (the Admin API) as FOCUS line items.

Money: ``GET /organizations/cost_report`` (daily buckets grouped by workspace and description,
which gives model and token type; ``amount`` is a decimal string in cents). Volumes:
``GET /organizations/usage_report/messages`` (hourly buckets in hourly mode, daily otherwise,
grouped by model, workspace and API key). ``ai_billing.to_focus`` joins them: the cost report has
no API key, so a key's cost is the day's actual cost of its model and token type shared by tokens.
The admin key is read from ``ANTHROPIC_ADMIN_KEY`` when a window is fetched, sent as
``x-api-key``, and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from finops_pipeline.errors import BillingDataError
from finops_pipeline.sources.ai_billing import (USAGE_BUCKETS_PER_PAGE, AdminApiSource, CostLine, UsageLine,
                                                parse_amount, parse_count, read_buckets, utc)
from finops_pipeline.sources.base import CostBasis
from finops_pipeline.sources.http_api import JsonApi

DEFAULT_URL = "https://api.anthropic.com/v1"
KEY_VARIABLE = "ANTHROPIC_ADMIN_KEY"
API_VERSION = "2023-06-01"
# The cost report's token types, and the usage report's fields, as ai_billing's token types.
TOKEN_TYPES = {
    "uncached_input_tokens": "input",
    "cache_read_input_tokens": "cached_input",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write_5m",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write_1h",
    "output_tokens": "output",
    "server_tool_use.web_search_requests": "web_search",
}


@dataclass(frozen=True)
class AnthropicSource(AdminApiSource):
    """Anthropic's Admin API (``FINOPS_ANTHROPIC_ADMIN_URL``, default https://api.anthropic.com/v1)."""

    name: ClassVar[str] = "anthropic"
    cost_basis: ClassVar[CostBasis] = "actual"
    provider: ClassVar[str] = "Anthropic"
    sub_account_type: ClassVar[str] = "Workspace"
    key_variable: ClassVar[str] = KEY_VARIABLE
    key_hint: ClassVar[str] = "an Anthropic Admin API key (sk-ant-admin…; Console → Settings → Admin keys)"
    url_variable: ClassVar[str] = "FINOPS_ANTHROPIC_ADMIN_URL"
    default_url: ClassVar[str] = DEFAULT_URL
    organization_variable: ClassVar[str] = "FINOPS_ANTHROPIC_ORGANIZATION_ID"
    base_url: str = DEFAULT_URL
    organization_id: str = "anthropic"

    def read(self, key, days, window, width):
        api = JsonApi("Anthropic", self.base_url, {"x-api-key": key, "anthropic-version": API_VERSION})
        return read_costs(api, *days), read_usage(api, *window, width)


def read_costs(api: JsonApi, start: datetime, end: datetime) -> list[CostLine]:
    """Every cost of ``[start, end)`` (days), grouped by workspace and description."""
    path = "/organizations/cost_report"
    params = {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": "1d",
              "group_by[]": ["workspace_id", "description"], "limit": 31}
    lines = []
    for bucket in _buckets(api, path, params):
        for i, result in enumerate(bucket.results):
            at = f"{bucket.where}, results[{i}]"
            if str(result.get("currency") or "USD").upper() != "USD":
                raise BillingDataError(f"{at}.currency is {result.get('currency')!r}: the pipeline reads USD bills "
                                       "only (nothing of the window was written)")
            cents = parse_amount(result.get("amount"), f"{at}.amount")
            token_type = result.get("token_type")
            kind = TOKEN_TYPES.get(token_type) if token_type else (
                "web_search" if result.get("cost_type") == "web_search" else None)
            description = result.get("description") or result.get("cost_type") or "Claude API"
            lines.append(CostLine(bucket.start, bucket.end, result.get("workspace_id"), result.get("model"), kind,
                                  cents / Decimal(100), description))
    return lines


def read_usage(api: JsonApi, start: datetime, end: datetime, width: str) -> list[UsageLine]:
    """Tokens (and web searches) of ``[start, end)`` per ``width`` bucket, model, workspace and key."""
    path = "/organizations/usage_report/messages"
    params = {"starting_at": _rfc3339(start), "ending_at": _rfc3339(end), "bucket_width": width,
              "group_by[]": ["model", "workspace_id", "api_key_id"], "limit": USAGE_BUCKETS_PER_PAGE[width]}
    lines = []
    for bucket in _buckets(api, path, params):
        for i, result in enumerate(bucket.results):
            for name, token_type in TOKEN_TYPES.items():
                outer, _, inner = name.partition(".")
                value = (result.get(outer) or {}).get(inner) if inner else result.get(outer)
                quantity = parse_count(value, f"{bucket.where}, results[{i}].{name}") or 0
                if quantity > 0:
                    lines.append(UsageLine(bucket.start, bucket.end, result.get("workspace_id"), result.get("model"),
                                           result.get("api_key_id"), token_type, quantity))
    return lines


def _buckets(api: JsonApi, path: str, params: dict):
    return read_buckets(api, path, params, ("starting_at", "ending_at"),
                        lambda t: utc(datetime.fromisoformat(str(t).replace("Z", "+00:00"))), "RFC 3339 timestamps")


def _rfc3339(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"
