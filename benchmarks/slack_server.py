"""A local HTTP server speaking the Slack Web API wire format, for the real `slack_sdk` client.

Methods: an incoming webhook (``webhook_url``), chat.postMessage (threads, message metadata), chat.update, conversations.history /
.replies / .list, and the three-step file upload of files.uploadV2 (files.getUploadURLExternal, a
POST of the bytes to the upload URL, files.completeUploadExternal). Channels are known by name
(``#finops-alerts`` is ``C0FINOPS``; any other name gets an id on first use) and answered by id,
as Slack does.

Failure injection: ``fail(method, status, headers, body, times)`` makes the next calls of a method
answer with an error (a 429 with Retry-After, a 500, ``{"ok": false, ...}``); ``on_request`` is called
with each request after the server has acted on it and before it answers (a test can kill the
client there, the way a crash between send and ledger write would).
"""

from __future__ import annotations

import json
import threading
import time

from benchmarks.protocol_servers import _Server


class SlackServer(_Server):
    CHANNEL_ID = "C0FINOPS"

    def __init__(self) -> None:
        super().__init__()
        self._ts = 0.0
        self._lock = threading.Lock()
        self.channels: dict[str, str] = {"finops-alerts": self.CHANNEL_ID}
        self.messages: dict[str, dict] = {}  # ts -> the message as it now reads (channel, thread_ts, metadata, files)
        self.uploads: dict[str, dict] = {}  # file id -> {filename, content}
        self.webhook_posts: list[dict] = []  # what the incoming webhook URL received
        self._failures: list[dict] = []
        self.on_request = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0FINOPS/B0FINOPS/secretpart"

    def fail(self, method: str, status: int = 200, headers: dict | None = None, body: dict | None = None,
             times: int = 1) -> None:
        self._failures.append({"method": method, "status": status, "headers": headers or {},
                               "body": body or {"ok": False, "error": "internal_error"}, "times": times})

    def _bodies(self, method: str) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith(method) and not r.get("failed")]

    @property
    def posts(self) -> list[dict]:
        """chat.postMessage calls that posted (not those answered with an injected failure)."""
        return self._bodies("chat.postMessage")

    @property
    def updates(self) -> list[dict]:
        return self._bodies("chat.update")

    def channel_id(self, channel: str) -> str:
        if channel in self.channels.values():
            return channel
        name = channel.lstrip("#")
        return self.channels.setdefault(name, f"C0{abs(hash(name)) % 10**8:08d}")

    def thread(self, ts: str) -> list[dict]:
        """A thread's replies, oldest first."""
        return sorted((m for m in self.messages.values() if m.get("thread_ts") == ts and m["ts"] != ts),
                      key=lambda m: m["ts"])

    def respond(self, record):
        with self._lock:
            reply = self._respond(record)
        if self.on_request is not None:
            self.on_request(record)
        return reply

    def _respond(self, record):
        method = record["path"].rsplit("/", 1)[-1]
        if record["path"].startswith("/upload/"):
            file_id = method
            self.uploads[file_id]["content"] = record["raw"]
            return 200, {}, b"OK - " + str(len(record["raw"])).encode()
        if record["path"].startswith("/services/"):
            method = "webhook"
        for failure in self._failures:
            if failure["method"] == method and failure["times"] > 0:
                failure["times"] -= 1
                record["failed"] = True
                return failure["status"], failure["headers"], failure["body"]
        if method == "webhook":  # an incoming webhook: the URL is the credential, the answer plain text
            self.webhook_posts.append(record["body"])
            return 200, {}, b"ok"
        if not (record["headers"].get("authorization") or "").startswith("Bearer xoxb-"):
            return 200, {}, {"ok": False, "error": "not_authed"}
        body = record["body"]
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(body)

    def _next_ts(self) -> str:
        # Slack's ts is the post's time, unique per channel: conversations.history's `oldest` filters on it.
        self._ts = max(self._ts + 0.000001, time.time())
        return f"{self._ts:.6f}"

    def _chat_postMessage(self, body):
        channel = self.channel_id(body["channel"])
        thread_ts = body.get("thread_ts")
        if thread_ts and thread_ts not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        ts = self._next_ts()
        message = {"ts": ts, "channel": channel, "text": body.get("text"), "blocks": body.get("blocks"),
                   "thread_ts": thread_ts, "metadata": body.get("metadata"), "files": []}
        self.messages[ts] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, body):
        message = self.messages.get(body.get("ts"))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if body.get("channel") != message["channel"]:
            return {"ok": False, "error": "channel_not_found"}
        message.update(text=body.get("text"), blocks=body.get("blocks"))
        return {"ok": True, "channel": message["channel"], "ts": message["ts"], "text": body.get("text")}

    def _visible(self, message, body):
        shown = dict(message)
        if str(body.get("include_all_metadata")).lower() not in ("1", "true"):
            shown.pop("metadata", None)
        return shown

    def _conversations_history(self, body):
        oldest = float(body.get("oldest") or 0)
        found = [m for m in self.messages.values() if m["channel"] == body.get("channel") and not m.get("thread_ts")
                 and float(m["ts"]) > oldest]
        found.sort(key=lambda m: m["ts"], reverse=True)
        return {"ok": True, "messages": [self._visible(m, body) for m in found], "has_more": False}

    def _conversations_replies(self, body):
        head = self.messages.get(body.get("ts"))
        if head is None or head["channel"] != body.get("channel"):
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": [self._visible(m, body) for m in [head, *self.thread(head["ts"])]], "has_more": False}

    def _conversations_list(self, body):
        return {"ok": True, "channels": [{"id": i, "name": n} for n, i in self.channels.items()],
                "response_metadata": {"next_cursor": ""}}

    def _files_getUploadURLExternal(self, body):
        file_id = f"F{len(self.uploads) + 1:07d}"
        self.uploads[file_id] = {"filename": body.get("filename"), "length": int(body.get("length") or 0), "content": None}
        return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}

    def _files_completeUploadExternal(self, body):
        files = json.loads(body.get("files") or "[]")
        if any(self.uploads.get(f["id"], {}).get("content") is None for f in files):
            return {"ok": False, "error": "file_upload_not_complete"}
        channel = self.channel_id(body["channel_id"]) if body.get("channel_id") else None
        shared = [{"id": f["id"], "name": self.uploads[f["id"]]["filename"], "title": f.get("title")} for f in files]
        if channel:
            thread_ts = body.get("thread_ts")
            if thread_ts and thread_ts not in self.messages:
                return {"ok": False, "error": "thread_not_found"}
            ts = self._next_ts()
            self.messages[ts] = {"ts": ts, "channel": channel, "text": body.get("initial_comment") or "",
                                 "blocks": None, "thread_ts": thread_ts, "metadata": None, "files": shared}
        return {"ok": True, "files": shared}
