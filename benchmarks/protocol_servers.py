"""Local HTTP servers: the shared threaded base; one speaking the OpenAI chat-completions wire
format so the real `openai` client is exercised over HTTP in tests (Slack: see slack_server.py);
and the OpenAI and Anthropic Admin APIs' usage and cost endpoints, as documented, for the AI
billing sources."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlsplit(self.path)
                if "json" in (self.headers.get("Content-Type") or ""):
                    payload = json.loads(body or b"{}")
                else:
                    # Form-encoded, or raw bytes (a file upload): kept as sent in "raw".
                    payload = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
                # Query parameters count as arguments too (slack_sdk sends some methods' that way).
                payload = {**{k: v[0] for k, v in parse_qs(url.query).items()}, **payload}
                record = {"path": url.path, "method": self.command, "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": payload, "raw": body, "received_at": time.time(),
                          "query": parse_qs(url.query)}  # every value of a repeated parameter
                outer.requests.append(record)
                status, headers, reply = outer.respond(record)
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except BrokenPipeError:  # the client timed out first, as some tests intend
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def respond(self, record: dict) -> tuple[int, dict, object]:
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._httpd.shutdown()
        self._httpd.server_close()


class OpenAIServer(_Server):
    """POST /v1/chat/completions, answering from a script. ``replies`` is consumed in order, one
    entry per request (``default`` once it is empty):

    - a string: a completion with that content (JSON text, for structured output);
    - an int: that HTTP error status, with an OpenAI-style error body;
    - a tuple ``(status, headers)`` or ``(status, headers, body)``: that status with those headers,
      e.g. ``(429, {"Retry-After": "1"})``; ``body`` (bytes, or an object sent as JSON) replaces
      the error body, and with status 200 is the whole response;
    - bytes: a raw 200 body, e.g. a malformed one;
    - a float: a delay in seconds before answering with the next entry (for client timeouts);
    - a callable: called with the request's record, returning any of the above but a float.

    Every request is recorded in ``requests`` (``bodies``: their JSON bodies); ``usage`` is the
    (prompt, completion) token usage each completion reports."""

    def __init__(self, replies: list | None = None, default="All good.", usage: tuple[int, int] = (321, 54)) -> None:
        super().__init__()
        self.replies = list(replies or [])
        self.default = default
        self.usage = usage
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]

    def _next(self):
        with self._lock:
            return self.replies.pop(0) if self.replies else self.default

    def completion(self, content: str | None, model: str = "test-model") -> dict:
        prompt, completion = self.usage
        return {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def respond(self, record):
        reply = self._next()
        if isinstance(reply, float):
            time.sleep(reply)
            reply = self._next()
        if callable(reply):
            reply = reply(record)
        error = {"error": {"message": "server error", "type": "server_error", "code": None}}
        if isinstance(reply, int) and not isinstance(reply, bool):
            return reply, {}, error
        if isinstance(reply, tuple):
            status, headers, *body = reply
            return status, dict(headers), body[0] if body else error
        if isinstance(reply, bytes):
            return 200, {}, reply
        return 200, {}, self.completion(reply, record["body"].get("model", "test-model"))


class _AdminApi(_Server):
    """What the OpenAI and Anthropic admin servers share: usage and cost records kept at their
    finest grain (cost per day, usage per hour) and served as the APIs do, in time buckets grouped
    by the requested dimensions (a dimension not grouped by is null), ``limit`` buckets a page,
    with an opaque ``next_page`` cursor; a wrong key gets 401. ``script`` answers the first
    requests instead (e.g. ``(429, {"Retry-After": "1"})``), one entry each; ``max_buckets`` caps a
    page below the ``limit`` asked for, to make pages."""

    KEY = "sk-admin-test"
    NUMBERS: dict[str, tuple[str, ...]] = {}  # per endpoint path, its summed fields

    def __init__(self, costs: list[dict] | None = None, usage: dict[str, list[dict]] | None = None,
                 script: list | None = None, max_buckets: int | None = None) -> None:
        super().__init__()
        self.max_buckets = max_buckets
        self.costs = list(costs or [])
        self.usage = {k: list(v) for k, v in (usage or {}).items()}
        self.script = list(script or [])
        self._lock = threading.Lock()

    def respond(self, record):
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            status, headers, *body = scripted
            return status, dict(headers), body[0] if body else {"error": {"type": "rate_limit_error",
                                                                          "message": "Rate limited"}}
        if not self.authorized(record["headers"]):
            return 401, {}, {"error": {"type": "authentication_error", "message": "invalid x-api-key / bearer token"}}
        return self.serve(record)

    def _page(self, buckets: list[dict], query: dict, default_limit: int) -> dict:
        offset = int((query.get("page") or ["page_0"])[0].removeprefix("page_"))
        limit = min(int((query.get("limit") or [default_limit])[0]), self.max_buckets or 10**9)
        chunk = buckets[offset:offset + limit]
        more = offset + limit < len(buckets)
        return {"data": chunk, "has_more": more, "next_page": f"page_{offset + limit}" if more else None}

    @staticmethod
    def _bounds(start: datetime, end: datetime, width: timedelta):
        """The buckets of ``width`` from ``start`` up to ``end``, as (start, end)."""
        t = start
        while t < end:
            yield t, t + width
            t += width

    @classmethod
    def _grouped(cls, records: list[dict], start: datetime, end: datetime, width: timedelta, dims: tuple[str, ...],
                 groups: list[str], numbers: tuple[str, ...]):
        """Per bucket of ``width`` in ``[start, end)``: its (start, end) and its results, summed
        over the records in it, one per combination of the ``groups`` dimensions."""
        out = []
        for a, b in cls._bounds(start, end, width):
            results: dict[tuple, dict] = {}
            for r in records:
                if a <= r["start"] < b:
                    key = tuple(r.get(d) if d in groups else None for d in dims)
                    acc = results.setdefault(key, {**dict(zip(dims, key)), **{n: 0 for n in numbers}})
                    for n in numbers:
                        acc[n] += r.get(n, 0)
            out.append((a, b, list(results.values())))
        return out


class OpenAIAdminServer(_AdminApi):
    """``GET /v1/organization/costs`` and ``/v1/organization/usage/{completions,embeddings,images,
    audio_speeches,audio_transcriptions}``.

    ``costs``: dicts with ``start`` (a UTC day's datetime), ``project_id``, ``line_item`` and
    ``value`` (a Decimal; sent as a JSON number, or as a string when ``as_string``), optional
    ``currency`` (default usd). ``usage``: per endpoint, dicts with ``start`` (an hour),
    ``model``, ``project_id``, ``api_key_id`` (images also ``size`` and ``source``) and the
    endpoint's counts; an endpoint without any is served as buckets with no results.
    ``answers``: per usage endpoint (``images``) or ``costs``, what it answers every time instead:
    an HTTP status (with an OpenAI-style error body), or a 200 body."""

    NUMBERS = {"completions": ("input_tokens", "output_tokens", "input_cached_tokens", "input_audio_tokens",
                               "output_audio_tokens", "num_model_requests"),
               "embeddings": ("input_tokens", "num_model_requests"),
               "images": ("images", "num_model_requests"),
               "audio_speeches": ("characters", "num_model_requests"),
               "audio_transcriptions": ("seconds", "num_model_requests")}
    # The dimensions a result carries (null unless grouped by), per endpoint.
    DIMENSIONS = {"images": ("model", "project_id", "api_key_id", "size", "source")}

    def __init__(self, *args, answers: dict[str, int | dict] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answers = dict(answers or {})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def authorized(self, headers: dict) -> bool:
        return headers.get("authorization") == f"Bearer {self.KEY}"

    def serve(self, record):
        q = record["query"]
        answer = self.answers.get(record["path"].removeprefix("/v1/organization/").removeprefix("usage/"))
        if isinstance(answer, int):
            kind = "invalid_request_error" if answer < 500 else "server_error"
            return answer, {}, {"error": {"message": f"{record['path']}: HTTP {answer}", "type": kind}}
        if answer is not None:
            return 200, {}, answer
        if "start_time" not in q:
            return 400, {}, {"error": {"message": "Missing required parameter: 'start_time'.", "type": "invalid_request_error"}}
        start = datetime.fromtimestamp(int(q["start_time"][0]), timezone.utc)
        end = datetime.fromtimestamp(int(q["end_time"][0]), timezone.utc) if "end_time" in q else start + timedelta(days=7)
        groups = q.get("group_by", [])
        width = timedelta(hours=1) if q.get("bucket_width", ["1d"])[0] == "1h" else timedelta(days=1)
        if record["path"] == "/v1/organization/costs":
            buckets = []
            for b_start, b_end in self._bounds(start, end, timedelta(days=1)):
                results: dict[tuple, dict] = {}
                for c in self.costs:
                    if b_start <= c["start"] < b_end:
                        key = (c["project_id"] if "project_id" in groups else None,
                               c["line_item"] if "line_item" in groups else None, c.get("as_string", False))
                        acc = results.setdefault(key, {"currency": c.get("currency", "usd"), "value": Decimal(0)})
                        # A value that is not a number is sent as given (a bad answer, for tests).
                        acc["value"] = acc["value"] + c["value"] if isinstance(c["value"], Decimal) else c["value"]
                buckets.append({"object": "bucket", "start_time": int(b_start.timestamp()), "end_time": int(b_end.timestamp()),
                                "results": [{"object": "organization.costs.result", "project_id": k[0], "line_item": k[1],
                                             "amount": {"value": str(v["value"]) if k[2] or not isinstance(v["value"], Decimal)
                                                        else float(v["value"]),
                                                        "currency": v["currency"]}}
                                            for k, v in results.items()]})
            return 200, {}, {"object": "page", **self._page(buckets, q, 7)}
        endpoint = record["path"].removeprefix("/v1/organization/usage/")
        if endpoint not in self.NUMBERS:
            return 404, {}, {"error": {"message": f"Unknown path {record['path']}", "type": "invalid_request_error"}}
        dims = self.DIMENSIONS.get(endpoint, ("model", "project_id", "api_key_id"))
        buckets = [{"object": "bucket", "start_time": int(a.timestamp()), "end_time": int(b.timestamp()),
                    "results": [{"object": f"organization.usage.{endpoint}.result", **r} for r in results]}
                   for a, b, results in self._grouped(self.usage.get(endpoint, []), start, end, width, dims, groups,
                                                      self.NUMBERS[endpoint])]
        return 200, {}, {"object": "page", **self._page(buckets, q, 7 if width == timedelta(days=1) else 24)}


class AnthropicAdminServer(_AdminApi):
    """``GET /v1/organizations/cost_report`` and ``/v1/organizations/usage_report/messages``.

    ``costs``: dicts with ``start`` (a UTC day), ``workspace_id``, ``model``, ``token_type`` (the
    API's names, e.g. ``uncached_input_tokens``; None with ``cost_type`` web_search), ``cents``
    (a Decimal, sent as a decimal string) and ``description``. ``usage["messages"]``: dicts with
    ``start`` (an hour), ``model``, ``workspace_id``, ``api_key_id`` and the report's counts, the
    nested ones flattened (``cache_creation.ephemeral_5m_input_tokens``)."""

    NUMBERS = ("uncached_input_tokens", "cache_read_input_tokens", "output_tokens",
               "cache_creation.ephemeral_5m_input_tokens", "cache_creation.ephemeral_1h_input_tokens",
               "server_tool_use.web_search_requests")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def authorized(self, headers: dict) -> bool:
        return headers.get("x-api-key") == self.KEY and bool(headers.get("anthropic-version"))

    def serve(self, record):
        q = record["query"]
        if "starting_at" not in q:
            return 400, {}, {"type": "error", "error": {"type": "invalid_request_error", "message": "starting_at: Field required"}}
        start = datetime.fromisoformat(q["starting_at"][0].replace("Z", "+00:00"))
        end = datetime.fromisoformat(q["ending_at"][0].replace("Z", "+00:00")) if "ending_at" in q else start + timedelta(days=7)
        groups = q.get("group_by[]", [])
        width = timedelta(hours=1) if q.get("bucket_width", ["1d"])[0] == "1h" else timedelta(days=1)

        def stamp(t: datetime) -> str:
            return f"{t:%Y-%m-%dT%H:%M:%SZ}"

        if record["path"] == "/v1/organizations/cost_report":
            buckets = []
            for b_start, b_end in self._bounds(start, end, timedelta(days=1)):
                results: dict[tuple, dict] = {}
                for c in self.costs:
                    if b_start <= c["start"] < b_end:
                        described = "description" in groups
                        key = (c["workspace_id"] if "workspace_id" in groups else None,
                               *((c.get("model"), c.get("token_type"), c.get("cost_type", "tokens"), c["description"])
                                 if described else (None,) * 4))
                        acc = results.setdefault(key, Decimal(0))
                        results[key] = acc + c["cents"]
                buckets.append({"starting_at": stamp(b_start), "ending_at": stamp(b_end), "results": [
                    {"currency": "USD", "amount": str(cents), "workspace_id": k[0], "model": k[1], "token_type": k[2],
                     "cost_type": k[3], "description": k[4], "context_window": "0-200k" if k[1] else None,
                     "service_tier": "standard" if k[1] else None} for k, cents in results.items()]})
            return 200, {}, self._page(buckets, q, 7)
        if record["path"] != "/v1/organizations/usage_report/messages":
            return 404, {}, {"type": "error", "error": {"type": "not_found_error", "message": record["path"]}}
        dims = ("model", "workspace_id", "api_key_id")
        buckets = []
        for a, b, results in self._grouped(self.usage.get("messages", []), start, end, width, dims, groups, self.NUMBERS):
            shaped = []
            for r in results:
                nested: dict = {}
                for name, value in r.items():
                    outer, _, inner = name.partition(".")
                    if inner:
                        nested.setdefault(outer, {})[inner] = value
                    else:
                        nested[name] = value
                shaped.append({**nested, "service_tier": "standard", "context_window": "0-200k"})
            buckets.append({"starting_at": stamp(a), "ending_at": stamp(b), "results": shaped})
        return 200, {}, self._page(buckets, q, 7 if width == timedelta(days=1) else 24)
