"""Delivering the alert outbox (the `alert_outbox` table): nothing lost, nothing sent twice.

Every message is enqueued in the transaction that decides to send it (the ledger's record of
what the alert announces is written in the same one), then delivered here, one row at a time:

    pending ──mark sending──▶ send ──▶ sent (ts recorded, with the ledger, in one transaction)
       ▲                        │
       └── failed: attempts+1, backoff, last_error (Slack unreachable, rate-limited, an API error)

A process that dies between the send and the record leaves the row ``sending``; the next delivery
first looks for it in Slack (every post carries its ``message_id`` in Slack message metadata, a
chart its file name) and records what it finds instead of posting again. An edit (``update``)
is idempotent and simply re-applied. A reply, an edit or a chart waits until its thread's head is
sent. Rate limits and unreachable Slack stop the run's delivery, leaving the rest pending for the
next sensor tick; a row keeps being retried (backoff capped at an hour) until it goes through.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from finops_pipeline.warehouse import transaction

KINDS = ("alert", "update", "reply", "chart", "digest")
METADATA_EVENT = "finops_alert"
MAX_BACKOFF_S = 3600
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def message_id(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def enqueue(con: duckdb.DuckDBPyConnection, message_id: str, incident_id: str | None, kind: str, destination: str,
            channel: str | None, payload: dict, head_message_id: str | None = None, chart_path: str | None = None) -> bool:
    """Add a message to the outbox, unless it is there already (ids say what a message is for, so
    enqueueing twice is harmless). Call inside the caller's transaction. True when added."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if con.execute("SELECT 1 FROM alert_outbox WHERE message_id = ?", [message_id]).fetchone():
        return False
    now = datetime.now(timezone.utc)
    con.execute(
        """INSERT INTO alert_outbox (message_id, seq, incident_id, kind, head_message_id, destination, channel, payload,
                                     chart_path, status, attempts, enqueued_at, next_attempt_at)
           SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ? FROM alert_outbox""",
        [message_id, incident_id, kind, head_message_id, destination, channel, json.dumps(payload, default=str),
         chart_path, now, now],
    )
    return True


@dataclass
class Delivery:
    """What one delivery pass did, message ids by outcome."""

    sent: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)  # found already in Slack after a crash: recorded, not re-sent
    failed: dict[str, str] = field(default_factory=dict)  # id -> error; still pending, retried later
    waiting: list[str] = field(default_factory=list)  # not due yet, or its thread's head is not sent yet


class Refused(Exception):
    """The destination answered that it did not take the message (``answered``), or failed in a
    way that leaves it unknown (a 5xx); ``retry_after`` when rate-limited."""

    def __init__(self, error: str, retry_after: float | None = None, answered: bool = True) -> None:
        super().__init__(error)
        self.error, self.retry_after, self.answered = error, retry_after, answered


class SlackTransport:
    """chat.postMessage / chat.update / files.uploadV2 through slack_sdk's WebClient (dagster-slack's)."""

    destination = "slack"

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._channel_ids: dict[str, str] = {}

    def send(self, row: dict, head: dict | None) -> tuple[str, str]:
        payload = row["payload"]
        metadata = {"event_type": METADATA_EVENT, "event_payload": {"message_id": row["message_id"]}}
        if row["kind"] in ("alert", "digest"):
            r = self.client.chat_postMessage(channel=row["channel"], text=payload["text"], blocks=payload["blocks"],
                                             metadata=metadata, unfurl_links=False, unfurl_media=False)
            return str(r["channel"]), str(r["ts"])
        if row["kind"] == "reply":
            r = self.client.chat_postMessage(channel=head["channel_id"], thread_ts=head["message_ref"], text=payload["text"],
                                             blocks=payload["blocks"], metadata=metadata, unfurl_links=False,
                                             unfurl_media=False)
            return str(r["channel"]), str(r["ts"])
        if row["kind"] == "update":
            r = self.client.chat_update(channel=head["channel_id"], ts=head["message_ref"], text=payload["text"],
                                        blocks=payload["blocks"])
            return str(r["channel"]), str(r["ts"])
        # chart: uploaded into the alert's thread
        r = self.client.files_upload_v2(channel=head["channel_id"], thread_ts=head["message_ref"], file=row["chart_path"],
                                        filename=payload["filename"], title=payload["title"])
        return str(head["channel_id"]), str(r["file"]["id"])

    def find(self, row: dict, head: dict | None) -> tuple[str, str] | None:
        """The message or file a crashed pass may have sent already, as (channel id, ref)."""
        if row["kind"] == "update":
            return None  # an edit is idempotent: re-applying it is the check
        if row["kind"] in ("alert", "digest"):
            channel = row["channel_id"] or self._channel_id(row["channel"])
            if channel is None:
                return None
            since = row["sending_since"] - timedelta(minutes=5)
            pages = self._pages(self.client.conversations_history, channel=channel, oldest=f"{since.timestamp():.6f}",
                                include_all_metadata=True, limit=200)
        else:
            channel = head["channel_id"]
            pages = self._pages(self.client.conversations_replies, channel=channel, ts=head["message_ref"],
                                include_all_metadata=True, limit=200)
        for message in (m for page in pages for m in page.get("messages", [])):
            if row["kind"] == "chart":
                for f in message.get("files") or []:
                    if f.get("name") == row["payload"]["filename"]:
                        return channel, str(f["id"])
            elif (message.get("metadata") or {}).get("event_payload", {}).get("message_id") == row["message_id"]:
                return channel, str(message["ts"])
        return None

    @staticmethod
    def _pages(method, **kwargs):
        cursor = None
        while True:
            page = method(**kwargs, **({"cursor": cursor} if cursor else {}))
            yield page
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _channel_id(self, channel: str) -> str | None:
        """conversations.history wants an id; routes may name channels (#finops-alerts)."""
        if CHANNEL_ID.match(channel):
            return channel
        name = channel.lstrip("#")
        if name not in self._channel_ids:
            for page in self._pages(self.client.conversations_list, types="public_channel,private_channel",
                                    exclude_archived=True, limit=1000):
                self._channel_ids.update({c["name"]: c["id"] for c in page.get("channels", [])})
        return self._channel_ids.get(name)


class WebhookTransport:
    """An incoming webhook (``FINOPS_SLACK_WEBHOOK_URL``): posts to its one channel, and can neither
    edit, reply in a thread nor upload. An edit is posted as a new message (the revised alert with
    its note); thread replies and charts are left out. A webhook returns no ts to look a post up
    by: a process killed between send and record can post one alert twice (use a bot token for
    exactly-once)."""

    destination = "webhook"

    def __init__(self, client: WebhookClient) -> None:
        self.client = client

    def send(self, row: dict, head: dict | None) -> tuple[str, str]:
        if row["kind"] in ("reply", "chart"):
            return "webhook", "not supported by incoming webhooks"
        payload = row["payload"]
        r = self.client.send(text=payload["text"], blocks=payload["blocks"], unfurl_links=False, unfurl_media=False)
        if r.status_code == 429:
            raise _rate_limited(r.headers)
        if r.status_code != 200:
            # Slack's webhook errors are short codes (invalid_payload, no_service); nothing else is kept.
            code = r.body if re.fullmatch(r"[a-z_]{1,40}", r.body or "") else ""
            raise Refused(f"webhook: HTTP {r.status_code} {code}".strip(), answered=r.status_code < 500)
        return "webhook", f"webhook:{row['message_id']}"

    def find(self, row: dict, head: dict | None) -> tuple[str, str] | None:
        return None


class FileTransport:
    """The local outbox when Slack is not configured: each alert as JSON (with the Slack payload
    it would have posted) and markdown; edits rewrite them, replies and charts sit beside them.
    Writes are atomic and idempotent, so a crashed pass simply writes again."""

    destination = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, row: dict, head: dict | None) -> tuple[str, str]:
        payload = row["payload"]
        stem = Path(head["message_ref"]).with_suffix("") if head else self.folder / payload["stem"]
        if row["kind"] == "chart":
            target = stem.with_name(f"{stem.name}.png")
            atomic_write(target, Path(row["chart_path"]).read_bytes())
            return "outbox", str(target)
        if row["kind"] == "reply":
            target = stem.with_name(f"{stem.name}.reply-{payload['revision']}.md")
            atomic_write(target, payload["markdown"])
            return "outbox", str(target)
        atomic_write(stem.with_suffix(".json"), json.dumps(payload["record"], indent=2, default=str))
        atomic_write(stem.with_suffix(".md"), payload["markdown"])
        return "outbox", str(stem.with_suffix(".json"))

    def find(self, row: dict, head: dict | None) -> tuple[str, str] | None:
        return None


def atomic_write(path: Path, data: str | bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    tmp.replace(path)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


def due(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> int:
    """Messages waiting to go out that are due now (read-only: the sensor asks)."""
    return con.execute(
        "SELECT count(*) FROM alert_outbox WHERE status <> 'sent' AND next_attempt_at <= ?",
        [now or datetime.now(timezone.utc)],
    ).fetchone()[0]


def _rows(con: duckdb.DuckDBPyConnection, where: str, params: list) -> list[dict]:
    cursor = con.execute(f"SELECT * FROM alert_outbox WHERE {where} ORDER BY seq", params)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r)) for r in cursor.fetchall()]
    for row in rows:
        row["payload"] = json.loads(row["payload"]) if row["payload"] else {}
    return rows


def deliver(con: duckdb.DuckDBPyConnection, transports: dict[str, SlackTransport | WebhookTransport | FileTransport],
            now: datetime | None = None) -> Delivery:
    """Send what is due, in enqueue order, with the transport each row was routed to."""
    now = now or datetime.now(timezone.utc)
    done = Delivery()
    for row in _rows(con, "status <> 'sent'", []):
        transport = transports.get(row["destination"])
        head = None
        if row["head_message_id"]:
            (head,) = _rows(con, "message_id = ?", [row["head_message_id"]]) or [None]
            if head is None or head["status"] != "sent":
                done.waiting.append(row["message_id"])
                continue
        if transport is None or row["next_attempt_at"] > now:
            done.waiting.append(row["message_id"])
            continue
        # After a timeout, a 5xx or a crash nobody knows whether the message went out: the row
        # stays `sending`, and the next pass looks for it before sending again.
        uncertain = row["status"] == "sending"
        try:
            if uncertain and (found := transport.find(row, head)) is not None:
                _mark_sent(con, row, *found)
                done.recovered.append(row["message_id"])
                continue
            con.execute("UPDATE alert_outbox SET status = 'sending', sending_since = ?, attempts = attempts + 1 "
                        "WHERE message_id = ?", [datetime.now(timezone.utc), row["message_id"]])
            uncertain = True
            channel_id, ref = transport.send(row, head)
        except (SlackApiError, Refused) as exc:
            refusal = _slack_refusal(exc) if isinstance(exc, SlackApiError) else exc
            _mark_failed(con, row, refusal.error, refusal.retry_after, still_uncertain=uncertain and not refusal.answered)
            done.failed[row["message_id"]] = refusal.error
            if refusal.retry_after is not None:  # rate-limited: everything else waits too
                break
            continue
        except (SlackClientError, urllib.error.URLError, OSError) as exc:
            # Unreachable: the class name only (messages can carry URLs and request details).
            error = f"unreachable: {type(exc).__name__}"
            _mark_failed(con, row, error, None, still_uncertain=uncertain)
            done.failed[row["message_id"]] = error
            break
        _mark_sent(con, row, channel_id, ref)
        done.sent.append(row["message_id"])
    return done


def _slack_refusal(exc: SlackApiError) -> Refused:
    response = exc.response
    status = getattr(response, "status_code", None) or 200
    error = (response.get("error") if isinstance(getattr(response, "data", None), dict) else None) or f"HTTP {status}"
    if status == 429 or error == "ratelimited":
        return _rate_limited(getattr(response, "headers", None))
    return Refused(f"slack: {error}", answered=status < 500)


def _rate_limited(headers) -> Refused:
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    value = headers.get("retry-after")
    value = value[0] if isinstance(value, list) else value
    try:
        return Refused(f"ratelimited (Retry-After {value}s)", float(value))
    except (TypeError, ValueError):
        return Refused("ratelimited", 30.0)


def _mark_failed(con, row: dict, error: str, retry_after: float | None, still_uncertain: bool) -> None:
    attempts = (row["attempts"] or 0) + 1
    wait = timedelta(seconds=retry_after) if retry_after is not None else backoff(attempts)
    con.execute("UPDATE alert_outbox SET status = ?, last_error = ?, next_attempt_at = ? WHERE message_id = ?",
                ["sending" if still_uncertain else "pending", error, datetime.now(timezone.utc) + wait, row["message_id"]])


def _mark_sent(con, row: dict, channel_id: str, ref: str) -> None:
    now = datetime.now(timezone.utc)
    with transaction(con):
        con.execute("""UPDATE alert_outbox SET status = 'sent', sent_at = ?, channel_id = ?, message_ref = ?, last_error = NULL
                       WHERE message_id = ?""", [now, channel_id, ref, row["message_id"]])
        if row["kind"] == "alert":
            con.execute("UPDATE alert_ledger SET channel = ?, message_ref = ?, sent_at = ? WHERE head_message_id = ?",
                        [channel_id, ref, now, row["message_id"]])
