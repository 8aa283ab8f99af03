"""Local HTTP servers: the shared threaded base, and one speaking the OpenAI chat-completions wire
format so the real `openai` client is exercised over HTTP in tests (Slack: see slack_server.py)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class _Server:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "json" in (self.headers.get("Content-Type") or ""):
                    payload = json.loads(body or b"{}")
                else:
                    payload = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": payload}
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
    """POST /v1/chat/completions. ``replies`` is consumed in order: a string is a completion, an int
    an HTTP error status, a float a delay in seconds before answering with the next reply."""

    def __init__(self, replies: list | None = None, default: str = "All good.") -> None:
        super().__init__()
        self.replies = list(replies or [])
        self.default = default

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def respond(self, record):
        reply = self.replies.pop(0) if self.replies else self.default
        if isinstance(reply, float):
            time.sleep(reply)
            reply = self.replies.pop(0) if self.replies else self.default
        if isinstance(reply, int):
            return reply, {}, {"error": {"message": "server error", "type": "server_error", "code": None}}
        return 200, {}, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": record["body"].get("model", "test-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 321, "completion_tokens": 54, "total_tokens": 375},
        }
