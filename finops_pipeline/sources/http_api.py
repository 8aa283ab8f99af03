"""A JSON-over-HTTP billing API, as the AI vendors' admin APIs are: GET with query parameters,
cursor pagination, 429 with Retry-After, and errors that name the provider, endpoint and status.

Retries are urllib3's (``Retry``): 429 and 5xx, honouring ``Retry-After``, with exponential back-off.
The key travels in a header and never in a message: errors quote the endpoint, the status and the
API's own error text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from finops_pipeline.errors import BillingDataError

RETRIED_STATUSES = (429, 500, 502, 503, 504)


class SourceApiError(BillingDataError):
    """A billing API refused or failed a request; nothing of the window was written. ``status``:
    the HTTP status it answered, if it answered."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class JsonApi:
    """``base_url`` (e.g. https://api.openai.com/v1) with ``headers`` sent on every request (the
    key among them). ``provider`` names it in errors."""

    provider: str
    base_url: str
    headers: Mapping[str, str]
    timeout_seconds: float = 60.0
    retries: int = 5
    backoff_seconds: float = 1.0
    # What to check, by error status, added to the message (the admin APIs' keys by default).
    advice: Mapping[int, str] = field(default_factory=lambda: {
        401: " (is the admin key right, and not revoked?)",
        403: " (does the key have the admin scope for usage and costs?)"})
    session: requests.Session = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()
        retry = Retry(total=self.retries, backoff_factor=self.backoff_seconds, status_forcelist=RETRIED_STATUSES,
                      allowed_methods={"GET"}, respect_retry_after_header=True, raise_on_status=False)
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers.update(self.headers)

    def get(self, path: str, params: Mapping[str, object]) -> dict:
        """The JSON object at ``path``; a ``SourceApiError`` naming the endpoint for an error status,
        a connection failure, or a body that is not a JSON object."""
        endpoint = f"GET {self.base_url}{path}"
        try:
            response = self.session.get(self.base_url + path, params=params, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            raise SourceApiError(f"{self.provider}: {endpoint} failed: {type(exc).__name__}: {_first_line(exc)}") from None
        if response.status_code >= 400:
            advice = {**self.advice, 429: f" (still rate-limited after {self.retries} retries)"}.get(response.status_code, "")
            raise SourceApiError(f"{self.provider}: {endpoint} answered HTTP {response.status_code}{advice}: "
                                 f"{_error_text(response)}", response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise SourceApiError(f"{self.provider}: {endpoint} answered HTTP {response.status_code} with a body that is "
                                 f"not JSON ({len(response.content)} bytes)") from None
        if not isinstance(body, dict):
            raise SourceApiError(f"{self.provider}: {endpoint} answered a JSON {type(body).__name__}, not an object")
        return body

    def pages(self, path: str, params: Mapping[str, object]) -> Iterator[dict]:
        """Every page of a cursor-paginated list: the next request carries ``page`` = the last
        page's ``next_page``, until ``has_more`` is false."""
        cursor = None
        while True:
            page = self.get(path, {**params, **({"page": cursor} if cursor else {})})
            yield page
            if not page.get("has_more"):
                return
            cursor = page.get("next_page")
            if not cursor:
                raise SourceApiError(f"{self.provider}: GET {self.base_url}{path} says has_more but gives no next_page")


def _error_text(response: requests.Response) -> str:
    """The API's own message (OpenAI and Anthropic: ``{"error": {"message": ...}}``), else the
    body's start."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except (ValueError, AttributeError):
        pass
    return response.text[:300] or response.reason or "no body"


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:300]
