"""The alert outbox against a local Slack Web API server, through the real slack_sdk client:
rate limits, Slack down, 5xx, a process killed between send and record, threads, charts, routing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from finops_pipeline.alerting.delivery import FileTransport, SlackTransport, deliver, due, enqueue, message_id
from finops_pipeline.alerting.routing import Routes, parse_routes
from finops_pipeline.defs.resources import FinopsSlackResource
from finops_pipeline.warehouse import migrate
from finops_pipeline_tests.conftest import fresh_warehouse
from benchmarks.slack_server import SlackServer

PNG = b"\x89PNG\r\n\x1a\n" + b"chart" * 50


def _blocks(text: str) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def _queue_alert(con, incident: str, channel: str = "#finops-alerts", chart: Path | None = None) -> str:
    """An alert as the alerts asset enqueues it: the head, its chart, and the ledger's record."""
    head = message_id(incident, "alert")
    migrate(con)
    enqueue(con, head, incident, "alert", "slack", channel, {"text": f"alert {incident}", "blocks": _blocks(f"alert {incident}")})
    if chart is not None:
        enqueue(con, message_id(head, "chart"), incident, "chart", "slack", channel,
                {"filename": f"finops-{incident}.png", "title": "Cost vs forecast"}, head_message_id=head, chart_path=str(chart))
    con.execute("INSERT INTO alert_ledger (incident_id, destination, channel, status, revision, head_message_id) "
                "VALUES (?, 'slack', ?, 'sent', 0, ?)", [incident, channel, head])
    return head


def _client(server: SlackServer, **kwargs):
    return FinopsSlackResource(token="xoxb-test", api_url=kwargs.get("api_url", server.api_url)).get_client()


def _outbox(con) -> dict[str, dict]:
    cursor = con.execute("SELECT * FROM alert_outbox")
    names = [d[0] for d in cursor.description]
    return {r[0]: dict(zip(names, r)) for r in cursor.fetchall()}


def test_an_alert_posts_once_with_its_chart_and_updates_in_its_thread(tmp_path):
    chart = tmp_path / "chart.png"
    chart.write_bytes(PNG)
    with SlackServer() as slack, duckdb.connect(str(tmp_path / "db.duckdb")) as con:
        head = _queue_alert(con, "inc1", chart=chart)
        transport = SlackTransport(_client(slack))
        done = deliver(con, {"slack": transport})
        assert len(done.sent) == 2 and not done.failed and not done.waiting
        (post,) = slack.posts
        ts = _outbox(con)[head]["message_ref"]
        assert post["channel"] == "#finops-alerts" and post["metadata"]["event_payload"]["message_id"] == head
        # The chart went through the three-step upload, into the alert's thread.
        (upload,) = slack.uploads.values()
        assert upload["content"] == PNG and upload["filename"] == "finops-inc1.png"
        (chart_message,) = slack.thread(ts)
        assert chart_message["files"][0]["name"] == "finops-inc1.png"
        ledger = con.execute("SELECT channel, message_ref FROM alert_ledger WHERE incident_id = 'inc1'").fetchone()
        assert ledger == (SlackServer.CHANNEL_ID, ts)

        # A revision: the head is edited, and what changed is said in the thread.
        enqueue(con, message_id(head, "update", 1), "inc1", "update", "slack", "#finops-alerts",
                {"text": "alert inc1 (now 3 days)", "blocks": _blocks("now 3 days")}, head_message_id=head)
        enqueue(con, message_id(head, "reply", 1), "inc1", "reply", "slack", "#finops-alerts",
                {"text": "Resolved: back in its band", "blocks": _blocks("Resolved: back in its band")}, head_message_id=head)
        assert len(deliver(con, {"slack": transport}).sent) == 2
        assert slack.messages[ts]["text"] == "alert inc1 (now 3 days)"
        assert [m["text"] for m in slack.thread(ts)][-1] == "Resolved: back in its band"
        assert deliver(con, {"slack": transport}).sent == []  # nothing is sent twice
        assert len(slack.posts) == 2 and len(slack.updates) == 1


def test_rate_limited_alerts_stay_pending_until_retry_after_and_then_go_once(tmp_path):
    with SlackServer() as slack, duckdb.connect(str(tmp_path / "db.duckdb")) as con:
        first, second = _queue_alert(con, "inc1"), _queue_alert(con, "inc2")
        slack.fail("chat.postMessage", 429, {"Retry-After": "7"}, {"ok": False, "error": "ratelimited"})
        transport = SlackTransport(_client(slack))
        done = deliver(con, {"slack": transport})
        # The first was refused; the second was not even tried (the limit applies to both).
        assert list(done.failed) == [first] and "ratelimited (Retry-After 7s)" in done.failed[first]
        rows = _outbox(con)
        assert rows[first]["status"] == "pending" and rows[second]["status"] == "pending" and not slack.posts
        wait = rows[first]["next_attempt_at"] - datetime.now(timezone.utc)
        assert timedelta(seconds=5) < wait <= timedelta(seconds=7)
        assert due(con) == 1  # the second is due; the first waits out its Retry-After
        later = datetime.now(timezone.utc) + timedelta(seconds=8)
        assert len(deliver(con, {"slack": transport}, now=later).sent) == 2
        assert deliver(con, {"slack": transport}, now=later).sent == []
        assert len(slack.posts) == 2 and due(con) == 0
        assert con.execute("SELECT count(*) FROM alert_ledger WHERE message_ref IS NOT NULL").fetchone()[0] == 2


@pytest.mark.parametrize("outage", ["unreachable", "500"])
def test_when_slack_is_down_nothing_is_lost_and_nothing_doubles(tmp_path, outage):
    with SlackServer() as slack, duckdb.connect(str(tmp_path / "db.duckdb")) as con:
        head = _queue_alert(con, "inc1")
        if outage == "unreachable":
            closed = SlackServer()  # bound, never started, then closed: connections are refused
            closed._httpd.server_close()
            client = _client(slack, api_url=closed.api_url)
        else:
            slack.fail("chat.postMessage", 500, body={"ok": False, "error": "internal_error"})
            client = _client(slack)
        done = deliver(con, {"slack": SlackTransport(client)})
        assert list(done.failed) == [head] and not slack.posts
        row = _outbox(con)[head]
        # Nobody knows whether a refused or failed request posted: the row stays `sending`, so
        # the next pass looks in the channel before posting again.
        assert row["status"] == "sending" and row["attempts"] == 1 and row["last_error"]
        assert "xoxb" not in row["last_error"]
        later = datetime.now(timezone.utc) + timedelta(minutes=5)
        done = deliver(con, {"slack": SlackTransport(_client(slack))}, now=later)
        assert done.sent == [head] and len(slack.posts) == 1
        lookups = [r for r in slack.requests if r["path"].endswith("conversations.history")]
        assert lookups and lookups[0]["body"]["channel"] == SlackServer.CHANNEL_ID  # the name resolved to its id


def test_a_process_killed_between_send_and_record_does_not_post_twice(tmp_path):
    """The delivering process dies after Slack accepted the post and before the ts was recorded;
    the next delivery finds the post by its metadata and records it instead of posting again."""
    db = tmp_path / "db.duckdb"
    with SlackServer() as slack:
        with duckdb.connect(str(db)) as con:
            head = _queue_alert(con, "inc1")
        script = textwrap.dedent(f"""
            import duckdb
            from finops_pipeline.alerting.delivery import SlackTransport, deliver
            from finops_pipeline.defs.resources import FinopsSlackResource
            client = FinopsSlackResource(token="xoxb-test", api_url={slack.api_url!r}).get_client()
            with duckdb.connect({str(db)!r}) as con:
                deliver(con, {{"slack": SlackTransport(client)}})
            print("survived")
        """)
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)

        def crash(record):
            if record["path"].endswith("chat.postMessage"):
                os.killpg(child.pid, signal.SIGKILL)  # Slack has the message; the process never hears back

        slack.on_request = crash
        out, _ = child.communicate(timeout=120)
        assert child.returncode == -signal.SIGKILL and b"survived" not in out
        slack.on_request = None
        assert len(slack.posts) == 1
        with duckdb.connect(str(db)) as con:
            assert _outbox(con)[head]["status"] == "sending"
            done = deliver(con, {"slack": SlackTransport(_client(slack))})
            assert done.recovered == [head] and done.sent == []
            (posted_ts,) = slack.messages
            assert _outbox(con)[head]["message_ref"] == posted_ts
            assert con.execute("SELECT message_ref FROM alert_ledger").fetchone()[0] == posted_ts
        assert len(slack.posts) == 1


def test_replies_wait_for_their_head_and_enqueueing_twice_is_harmless(tmp_path):
    with SlackServer() as slack, duckdb.connect(str(tmp_path / "db.duckdb")) as con:
        head = _queue_alert(con, "inc1")
        assert not enqueue(con, head, "inc1", "alert", "slack", "#finops-alerts", {"text": "again", "blocks": []})
        reply = message_id(head, "reply", 1)
        enqueue(con, reply, "inc1", "reply", "slack", "#finops-alerts", {"text": "update", "blocks": []}, head_message_id=head)
        slack.fail("chat.postMessage", 200, body={"ok": False, "error": "channel_not_found"})
        done = deliver(con, {"slack": SlackTransport(_client(slack))})
        assert done.failed == {head: "slack: channel_not_found"} and done.waiting == [reply]
        assert _outbox(con)[head]["status"] == "pending"  # Slack answered: it did not post
        later = datetime.now(timezone.utc) + timedelta(minutes=5)
        done = deliver(con, {"slack": SlackTransport(_client(slack))}, now=later)
        assert done.sent == [head, reply]
        (reply_message,) = slack.thread(_outbox(con)[head]["message_ref"])
        assert reply_message["text"] == "update"


def test_the_file_outbox_writes_alerts_replies_and_charts_beside_each_other(tmp_path):
    chart = tmp_path / "c.png"
    chart.write_bytes(PNG)
    with fresh_warehouse() as con:
        head = message_id("inc1", "alert")
        enqueue(con, head, "inc1", "alert", "outbox", None,
                {"stem": "2025-05-12_inc1", "markdown": "# alert\n", "record": {"status": "sent", "revision": 0}})
        enqueue(con, message_id(head, "chart"), "inc1", "chart", "outbox", None, {"filename": "x.png", "title": "t"},
                head_message_id=head, chart_path=str(chart))
        enqueue(con, message_id(head, "reply", 1), "inc1", "reply", "outbox", None, {"markdown": "Resolved.\n", "revision": 1},
                head_message_id=head)
        assert len(deliver(con, {"outbox": FileTransport(tmp_path / "outbox")}).sent) == 3
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert files == ["2025-05-12_inc1.json", "2025-05-12_inc1.md", "2025-05-12_inc1.png", "2025-05-12_inc1.reply-1.md"]
    assert json.loads((tmp_path / "outbox" / "2025-05-12_inc1.json").read_text()) == {"status": "sent", "revision": 0}


def test_routes_send_each_team_to_its_channel_and_untagged_spend_to_the_default(tmp_path):
    routes = parse_routes('{"ml": "#ml-costs", "data": "C0DATA"}', "#finops")
    assert (routes.channel_for("ml"), routes.channel_for("data")) == ("#ml-costs", "C0DATA")
    assert routes.channel_for("untagged") == routes.channel_for(None) == routes.channel_for("web") == "#finops"
    assert parse_routes("ml=#ml-costs, untagged=#tag-your-stuff", "#finops").channel_for(None) == "#tag-your-stuff"
    file = tmp_path / "routes.json"
    file.write_text('{"ml": "#ml-costs"}')
    assert parse_routes(str(file), "#finops") == Routes("#finops", {"ml": "#ml-costs"})
    assert parse_routes("", "#finops") == Routes("#finops")
    file.write_text('{"ml": }')
    with pytest.raises(ValueError, match=rf"{file}: not valid JSON"):
        parse_routes(str(file), "#finops")
    with pytest.raises(ValueError, match=r"1 entry without one: 'ml': ''"):
        parse_routes('{"ml": "", "data": "#d"}', "#finops")
    with pytest.raises(ValueError, match=r"'ml' is not team=channel"):
        parse_routes("ml, data=#d", "#finops")


def test_an_incoming_webhook_posts_alerts_and_revisions_and_retries_a_rate_limit(tmp_path):
    from slack_sdk.webhook import WebhookClient

    from finops_pipeline.alerting.delivery import WebhookTransport

    with SlackServer() as slack, fresh_warehouse() as con:
        head = message_id("inc1", "alert")
        enqueue(con, head, "inc1", "alert", "webhook", None, {"text": "alert", "blocks": _blocks("alert")})
        enqueue(con, message_id(head, "update", 1), "inc1", "update", "webhook", None,
                {"text": "alert (resolved)", "blocks": _blocks("Resolved")}, head_message_id=head)
        enqueue(con, message_id(head, "reply", 1), "inc1", "reply", "webhook", None, {"text": "r", "blocks": []},
                head_message_id=head)
        slack.fail("webhook", 429, {"Retry-After": "3"}, b"rate_limited")
        transport = {"webhook": WebhookTransport(WebhookClient(slack.webhook_url))}
        assert "ratelimited (Retry-After 3s)" in deliver(con, transport).failed[head] and not slack.webhook_posts
        later = datetime.now(timezone.utc) + timedelta(seconds=4)
        assert len(deliver(con, transport, now=later).sent) == 3
        # A webhook cannot edit or thread: the revised alert is posted as a new message, the reply left out.
        assert [p["text"] for p in slack.webhook_posts] == ["alert", "alert (resolved)"]
        assert deliver(con, transport, now=later).sent == []
        assert len(slack.webhook_posts) == 2
