"""Local HTTP servers: the shared threaded base, and one speaking the OpenAI chat-completions wire
format so the real `openai` client is exercised over HTTP in tests (Slack: see slack_server.py)."""

from __future__ import annotations

import json
import threading
import time
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
                          "body": payload, "raw": body, "received_at": time.time()}
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
