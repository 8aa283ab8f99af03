"""OpenAI organization costs and usage (the Admin API) as FOCUS line items.

Money: ``GET /organization/costs`` (daily buckets grouped by project and line item; a line item
such as ``gpt-4o-2024-08-06, input`` is read as model and token type). Volumes:
``GET /organization/usage/completions`` and ``/usage/embeddings`` (tokens), ``/usage/images``
(images), ``/usage/audio_speeches`` (characters) and ``/usage/audio_transcriptions`` (seconds), in
hourly buckets in hourly mode, daily otherwise, grouped by model, project and API key. The image and
audio endpoints are optional: an HTTP 404 on one of them reads as no usage of it.
``ai_billing.to_focus`` joins money and volumes.
The admin key is read from ``OPENAI_ADMIN_KEY`` when a window is fetched, sent as a bearer token,
and never logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ClassVar

from finops_pipeline.errors import BillingDataError
from finops_pipeline.sources.ai_billing import (USAGE_BUCKETS_PER_PAGE, AdminApiSource, Bucket, CostLine, UsageLine,
                                                parse_amount, parse_count, parse_openai_line_item, read_buckets)
from finops_pipeline.sources.base import CostBasis
from finops_pipeline.sources.http_api import JsonApi, SourceApiError

DEFAULT_URL = "https://api.openai.com/v1"
KEY_VARIABLE = "OPENAI_ADMIN_KEY"
# Usage endpoints read, with the counts each has: (token type, field, minus field).
USAGE_ENDPOINTS = {
    "completions": (("input", "input_tokens", "input_cached_tokens"), ("cached_input", "input_cached_tokens", None),
                    ("output", "output_tokens", None)),
    "embeddings": (("input", "input_tokens", None),),
    "images": (("images", "images", None),),
    "audio_speeches": (("audio_characters", "characters", None),),
    "audio_transcriptions": (("audio_seconds", "seconds", None),),
}
# Endpoints a 404 on means "none of this here" (a gateway or an older API without them) rather than
# a broken source: an organisation's token usage must not stop loading for want of image usage.
OPTIONAL_ENDPOINTS = frozenset({"images", "audio_speeches", "audio_transcriptions"})


@dataclass(frozen=True)
class OpenAISource(AdminApiSource):
    """OpenAI's Admin API (``FINOPS_OPENAI_ADMIN_URL``, default https://api.openai.com/v1)."""

    name: ClassVar[str] = "openai"
    cost_basis: ClassVar[CostBasis] = "actual"
    provider: ClassVar[str] = "OpenAI"
    sub_account_type: ClassVar[str] = "Project"
    key_variable: ClassVar[str] = KEY_VARIABLE
    key_hint: ClassVar[str] = "an OpenAI admin key (organization settings → Admin keys), which reads usage and costs"
    url_variable: ClassVar[str] = "FINOPS_OPENAI_ADMIN_URL"
    default_url: ClassVar[str] = DEFAULT_URL
    organization_variable: ClassVar[str] = "FINOPS_OPENAI_ORGANIZATION_ID"
    base_url: str = DEFAULT_URL
    organization_id: str = "openai"

    def read(self, key, days, window, width):
        api = JsonApi("OpenAI", self.base_url, {"Authorization": f"Bearer {key}"})
        return read_costs(api, *days), [u for endpoint in USAGE_ENDPOINTS for u in read_usage(api, endpoint, *window, width)]


def read_costs(api: JsonApi, start: datetime, end: datetime) -> list[CostLine]:
    """Every cost result of ``[start, end)`` (days), grouped by project and line item."""
    lines = []
    params = {"start_time": _unix(start), "end_time": _unix(end), "bucket_width": "1d",
              "group_by": ["project_id", "line_item"], "limit": 180}
    for bucket in _buckets(api, "/organization/costs", params):
        for i, result in enumerate(bucket.results):
            amount = result.get("amount") or {}
            field_at = f"{bucket.where}, results[{i}].amount"
            currency = str(amount.get("currency") or "").lower()
            if currency != "usd":
                raise BillingDataError(f"{field_at}.currency is {amount.get('currency')!r}: the pipeline reads USD "
                                       "bills only (nothing of the window was written)")
            value = parse_amount(amount.get("value"), f"{field_at}.value")
            model, token_type = parse_openai_line_item(result.get("line_item"))
            lines.append(CostLine(bucket.start, bucket.end, result.get("project_id"), model, token_type, value,
                                  result.get("line_item") or "OpenAI API"))
    return lines


def read_usage(api: JsonApi, endpoint: str, start: datetime, end: datetime, width: str) -> list[UsageLine]:
    """The counts of one usage endpoint over ``[start, end)``, per ``width`` bucket, model, project
    and API key; none for an optional endpoint (``OPTIONAL_ENDPOINTS``) that answers 404 at once."""
    path = f"/organization/usage/{endpoint}"
    params = {"start_time": _unix(start), "end_time": _unix(end), "bucket_width": width,
              "group_by": ["model", "project_id", "api_key_id"], "limit": USAGE_BUCKETS_PER_PAGE[width]}
    lines: list[UsageLine] = []
    buckets = _buckets(api, path, params)
    if endpoint in OPTIONAL_ENDPOINTS:
        buckets = _unless_absent(api, path, buckets)
    for bucket in buckets:
        for i, result in enumerate(bucket.results):
            at = f"{bucket.where}, results[{i}]"
            requests = parse_count(result.get("num_model_requests"), f"{at}.num_model_requests")
            for token_type, name, minus in USAGE_ENDPOINTS[endpoint]:
                quantity = parse_count(result.get(name), f"{at}.{name}") or 0
                if minus:
                    quantity -= parse_count(result.get(minus), f"{at}.{minus}") or 0
                if quantity > 0:
                    lines.append(UsageLine(bucket.start, bucket.end, result.get("project_id"), result.get("model"),
                                           result.get("api_key_id"), token_type, quantity, requests))
                    requests = None  # the bucket's requests go on its first row only
    return lines


def _unless_absent(api: JsonApi, path: str, buckets: Iterator[Bucket]) -> Iterator[Bucket]:
    """``buckets``, or none when the endpoint answers 404 before the first of them. A 404 later
    (a cursor gone stale mid-window) still fails: part of a report is not "not present"."""
    started = False
    try:
        for bucket in buckets:
            started = True
            yield bucket
    except SourceApiError as exc:
        if started or exc.status != 404:
            raise


def _buckets(api: JsonApi, path: str, params: dict):
    return read_buckets(api, path, params, ("start_time", "end_time"),
                        lambda t: datetime.fromtimestamp(int(t), timezone.utc), "Unix seconds")


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())
