"""Alert messages: Slack Block Kit payloads and their markdown twin for the outbox.

Text that comes from billing data is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so a tag
value like ``<!channel>`` or ``<https://evil|click>`` is shown literally and never pings or links.
"""

from __future__ import annotations

from urllib.parse import quote

from finops_pipeline.alerting.facts import describe_series, money
from finops_pipeline.detection.scoring import SEVERITIES

SEVERITY_ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def escape_mrkdwn(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def asset_link(dagster_url: str, partition: str) -> str:
    return f"{dagster_url}/assets/anomalies?partition={quote(partition)}"


def incident_summary(fact: dict) -> str:
    unit = "period" if fact["periods"] == 1 else "periods"
    return (f"{fact['status']}, {fact['periods']} {unit} from {fact['start']} to {fact['latest']}, "
            f"{money(fact['total_excess_usd'], signed=True)} against expected in all")


def revision_note(previous: dict, current: dict | None) -> str:
    """Why a sent alert was edited, from what it said before and what is true now."""
    was = (f"{money(previous['actual_usd'])} actual, impact {money(previous['impact_usd'], signed=True)}, "
           f"{previous['severity']}")
    if current is None:
        return f"Withdrawn: re-scored, {previous['start']} is no longer an anomaly (it was {was})."
    if current.get("feedback") and not previous.get("feedback"):
        return f"Marked {current['feedback'].replace('_', ' ')}: no further alerts for this incident."
    if current["status"] == "resolved" and previous.get("status") != "resolved":
        return f"Resolved: back in its band after {current['latest']}."
    if SEVERITIES.index(current["severity"]) > SEVERITIES.index(previous["severity"]):
        return f"Escalated from {previous['severity']} to {current['severity']}."
    if current["periods"] != previous.get("periods"):
        return f"Ongoing: now {current['periods']} periods, latest {current['latest']}."
    return f"Updated: re-scored after the bill was restated (it was {was})."


def slack_message(fact: dict, dagster_url: str, report_ref: str | None, note: str | None = None,
                  withdrawn: bool = False, analysis: str | None = None) -> dict:
    """``text`` (the notification fallback) and ``blocks`` for one anomaly; ``note`` says why a
    sent alert was edited, and a ``withdrawn`` one says so in its header. ``analysis`` is the
    report's summary of the incident (the LLM's or the template's), escaped like billing text:
    a model can echo what the bill said."""
    series = escape_mrkdwn(describe_series(fact))
    headline = (
        f"{'WITHDRAWN ' if withdrawn else ''}{fact['severity'].upper()}: {series} {'spiked' if fact['direction'] == 'spike' else 'dropped'} to "
        f"{money(fact['actual_usd'])} on {fact['period']} (expected {money(fact['expected_usd'])}, "
        f"impact {money(fact['impact_usd'], signed=True)}, {fact['deviation_pct']:+.1f}%)"
    )
    fields = [
        ("Actual", money(fact["actual_usd"])),
        ("Expected", f"{money(fact['expected_usd'])} (band {money(fact['band_usd'][0])} – {money(fact['band_usd'][1])})"),
        ("Impact", f"{money(fact['impact_usd'], signed=True)} ({fact['deviation_pct']:+.1f}%)"),
        ("Team", escape_mrkdwn(fact["team"] or "-")),
        ("Account", escape_mrkdwn(f"{fact['sub_account'] or 'all'} ({fact['sub_account_id'] or '-'})")),
        ("Provider", escape_mrkdwn(fact["provider"] or "all")),
        ("Incident", incident_summary(fact)),
    ]
    contributors = "\n".join(
        f"• `{escape_mrkdwn(c['name'])}`: {money(c['actual'])} vs {money(c['expected'])} ({money(c['delta'], signed=True)})"
        for c in fact["top_contributors"]
    ) or "none identified"
    link = asset_link(dagster_url, fact["partition"])
    blocks = [
        # The header is fixed text: every piece of billing text goes through escaped mrkdwn.
        {"type": "header", "text": {"type": "plain_text", "text": f"{'WITHDRAWN: ' if withdrawn else ''}"
                                                                 f"{fact['severity'].upper()} cost anomaly on {fact['period']}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{SEVERITY_ICON[fact['severity']]} {headline}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Top contributors*\n{contributors}"}},
        *([{"type": "section", "text": {"type": "mrkdwn", "text": f"*Analysis*\n{escape_mrkdwn(analysis)[:2900]}"}}]
          if analysis else []),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in Dagster> · incident `{fact['incident_id']}`"
                                                    + (f" · report `{escape_mrkdwn(report_ref)}`" if report_ref else "")}],
        },
    ]
    if note:
        blocks.insert(1, {"type": "context", "elements": [{"type": "mrkdwn", "text": f":memo: {escape_mrkdwn(note)}"}]})
    return {"text": headline, "blocks": blocks}


def markdown_message(fact: dict, dagster_url: str, report_ref: str | None, note: str | None = None,
                     withdrawn: bool = False) -> str:
    lines = [
        f"# {'WITHDRAWN ' if withdrawn else ''}[{fact['severity'].upper()}] {describe_series(fact)} on {fact['period']}",
        "",
        *([f"_{note}_", ""] if note else []),
        f"- Actual: {money(fact['actual_usd'])}",
        f"- Expected: {money(fact['expected_usd'])} (band {money(fact['band_usd'][0])} – {money(fact['band_usd'][1])})",
        f"- Impact: {money(fact['impact_usd'], signed=True)} ({fact['deviation_pct']:+.1f}%, {fact['direction']})",
        f"- Incident: {incident_summary(fact)}",
        f"- Team: {fact['team'] or '-'}; account {fact['sub_account'] or 'all'} ({fact['sub_account_id'] or '-'}); provider {fact['provider'] or 'all'}",
        "",
        "Top contributors:",
        *[f"- `{c['name']}` ({c['dimension']}): {money(c['actual'])} vs {money(c['expected'])} ({money(c['delta'], signed=True)})"
          for c in fact["top_contributors"]],
        "",
        f"Dagster: {asset_link(dagster_url, fact['partition'])}",
        f"Incident id: {fact['incident_id']}" + (f"; report: {report_ref}" if report_ref else ""),
    ]
    return "\n".join(lines) + "\n"


def thread_reply(fact: dict, note: str, withdrawn: bool = False) -> dict:
    """What changed, posted in the alert's thread (the head message is edited to the new figures)."""
    icon = ":white_check_mark:" if fact["status"] == "resolved" or withdrawn or fact.get("feedback") else SEVERITY_ICON[fact["severity"]]
    text = (f"{escape_mrkdwn(note)} Now: {money(fact['actual_usd'])} actual vs {money(fact['expected_usd'])} expected on "
            f"{fact['period']}; {incident_summary(fact)}.")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {text}"}}]}
