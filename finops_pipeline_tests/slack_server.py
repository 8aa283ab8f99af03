"""A local HTTP server speaking the Slack Web API wire format, for the real `slack_sdk` client."""

from __future__ import annotations

from finops_pipeline_tests.protocol_servers import _Server


class SlackServer(_Server):
    """POST /api/chat.postMessage and /api/chat.update, answering like Slack's Web API: every post
    lands in one channel (id ``C0FINOPS``), and an update must name that id and a posted ``ts``."""

    CHANNEL_ID = "C0FINOPS"

    def __init__(self) -> None:
        super().__init__()
        self._ts = 1700000000
        self.messages: dict[str, dict] = {}  # ts -> the message as it now reads

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def _bodies(self, method: str) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith(method)]

    @property
    def posts(self) -> list[dict]:
        return self._bodies("chat.postMessage")

    @property
    def updates(self) -> list[dict]:
        return self._bodies("chat.update")

    def respond(self, record):
        if not (record["headers"].get("authorization") or "").startswith("Bearer xoxb-"):
            return 200, {}, {"ok": False, "error": "not_authed"}
        body = record["body"]
        message = {"text": body.get("text"), "blocks": body.get("blocks")}
        if record["path"].endswith("chat.postMessage"):
            self._ts += 1
            ts = f"{self._ts}.000100"
            self.messages[ts] = message
            return 200, {}, {"ok": True, "channel": self.CHANNEL_ID, "ts": ts, "message": message}
        if record["path"].endswith("chat.update"):
            if body.get("channel") != self.CHANNEL_ID:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            if body.get("ts") not in self.messages:
                return 200, {}, {"ok": False, "error": "message_not_found"}
            self.messages[body["ts"]] = message
            return 200, {}, {"ok": True, "channel": self.CHANNEL_ID, "ts": body["ts"], "text": body.get("text")}
        return 200, {}, {"ok": False, "error": "unknown_method"}
