"""Alert messages: Slack Block Kit payloads and their markdown twin for the outbox.

Text that comes from billing data is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so a tag
value like ``<!channel>`` or ``<https://evil|click>`` is shown literally and never pings or links.
"""

from __future__ import annotations

from urllib.parse import quote

from finops_pipeline.alerting.facts import money
from finops_pipeline.alerting.incident import Incident
from finops_pipeline.detection.scoring import SEVERITIES

SEVERITY_ICON = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def escape_mrkdwn(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def asset_link(dagster_url: str, partition: str) -> str:
    return f"{dagster_url}/assets/anomalies?partition={quote(partition)}"


def incident_summary(incident: Incident) -> str:
    unit = "period" if incident.periods == 1 else "periods"
    return (f"{incident.status}, {incident.periods} {unit} from {incident.start_label} to {incident.latest_label}, "
            f"{money(incident.total_excess_usd, signed=True)} against expected in all")


def usual_range(incident: Incident) -> str:
    """Why the period is unusual for its own series: the range its own forecast errors allow."""
    profile = f"a {incident.profile} series" if incident.profile else "this series"
    return (f"{money(incident.usual.lower)} – {money(incident.usual.upper)} for {profile}, "
            f"from its own forecast errors")


def revision_note(previous: Incident, current: Incident | None) -> str:
    """Why a sent alert was edited, from what it said before and what is true now."""
    was = f"{money(previous.actual_usd)} actual, impact {money(previous.impact_usd, signed=True)}, {previous.severity}"
    if current is None:
        return f"Withdrawn: re-scored, {previous.start_label} is no longer an anomaly (it was {was})."
    if current.feedback and not previous.feedback:
        return f"Marked {current.feedback.replace('_', ' ')}: no further alerts for this incident."
    if current.status == "resolved" and previous.status != "resolved":
        return f"Resolved: back in its band after {current.latest_label}."
    if SEVERITIES.index(current.severity) > SEVERITIES.index(previous.severity):
        return f"Escalated from {previous.severity} to {current.severity}."
    if current.periods != previous.periods:
        return f"Ongoing: now {current.periods} periods, latest {current.latest_label}."
    return f"Updated: re-scored after the bill was restated (it was {was})."


def slack_message(incident: Incident, dagster_url: str, report_ref: str | None, note: str | None = None,
                  withdrawn: bool = False, analysis: str | None = None) -> dict:
    """``text`` (the notification fallback) and ``blocks`` for one anomaly; ``note`` says why a
    sent alert was edited, and a ``withdrawn`` one says so in its header. ``analysis`` is the
    report's summary of the incident (the LLM's or the template's), escaped like billing text:
    a model can echo what the bill said."""
    i = incident
    series = escape_mrkdwn(i.series_description)
    # An incident of several periods may page on its total rather than its peak: say both.
    so_far = (f"; {money(i.total_excess_usd, signed=True)} over {i.periods} periods since {i.start_label}"
              if i.periods > 1 else "")
    headline = (
        f"{'WITHDRAWN ' if withdrawn else ''}{i.severity.upper()}: {series} {'spiked' if i.direction == 'spike' else 'dropped'} to "
        f"{money(i.actual_usd)} on {i.peak_label} (expected {money(i.expected_usd)}, "
        f"impact {money(i.impact_usd, signed=True)}, {i.deviation_pct:+.1f}%){so_far}"
    )
    kind = "cost anomaly"
    if i.is_data_gap:  # missing rows, for the pipeline's owner: not a change in spending
        headline = f"{'WITHDRAWN ' if withdrawn else ''}{i.severity.upper()}: DATA GAP: {escape_mrkdwn(i.gap_headline)}"
        kind = "data gap"
    fields = [
        ("Actual", money(i.actual_usd)),
        ("Expected", f"{money(i.expected_usd)} (band {money(i.band.lower)} – {money(i.band.upper)})"),
        ("Impact", f"{money(i.impact_usd, signed=True)} ({i.deviation_pct:+.1f}%)"),
        ("Team", escape_mrkdwn(i.team or "-")),
        ("Account", escape_mrkdwn(f"{i.sub_account or 'all'} ({i.sub_account_id or '-'})")),
        ("Provider", escape_mrkdwn(i.provider or "all")),
        ("Incident", incident_summary(i)),
        *([("Usual range", usual_range(i))] if i.usual else []),
    ]
    contributors = "\n".join(
        f"• `{escape_mrkdwn(c.name)}`: {money(c.actual)} vs {money(c.expected)} ({money(c.delta, signed=True)})"
        for c in i.top_contributors
    ) or "none identified"
    link = asset_link(dagster_url, i.partition)
    blocks = [
        # The header is fixed text: every piece of billing text goes through escaped mrkdwn.
        {"type": "header", "text": {"type": "plain_text", "text": f"{'WITHDRAWN: ' if withdrawn else ''}"
                                                                 f"{i.severity.upper()} {kind} on {i.peak_label}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{SEVERITY_ICON[i.severity]} {headline}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Top contributors*\n{contributors}"}},
        *([{"type": "section", "text": {"type": "mrkdwn", "text": "*Found*\n" + "\n".join(
            f"• {escape_mrkdwn(f)}" for f in i.findings)}}] if i.findings else []),
        *([{"type": "section", "text": {"type": "mrkdwn", "text": f"*Analysis*\n{escape_mrkdwn(analysis)[:2900]}"}}]
          if analysis else []),
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link}|Open in Dagster> · incident `{i.incident_id}`"
                                                    + (f" · report `{escape_mrkdwn(report_ref)}`" if report_ref else "")}],
        },
    ]
    if note:
        blocks.insert(1, {"type": "context", "elements": [{"type": "mrkdwn", "text": f":memo: {escape_mrkdwn(note)}"}]})
    return {"text": headline, "blocks": blocks}


def markdown_message(incident: Incident, dagster_url: str, report_ref: str | None, note: str | None = None,
                     withdrawn: bool = False) -> str:
    i = incident
    lines = [
        f"# {'WITHDRAWN ' if withdrawn else ''}[{i.severity.upper()}] {i.series_description} on {i.peak_label}",
        "",
        *([f"_{note}_", ""] if note else []),
        *([f"**Data gap**: {i.gap_headline}.", ""] if i.is_data_gap else []),
        f"- Actual: {money(i.actual_usd)}",
        f"- Expected: {money(i.expected_usd)} (band {money(i.band.lower)} – {money(i.band.upper)})",
        f"- Impact: {money(i.impact_usd, signed=True)} ({i.deviation_pct:+.1f}%, {i.direction})",
        f"- Incident: {incident_summary(i)}",
        *([f"- Usual range: {usual_range(i)}"] if i.usual else []),
        *[f"- Found: {f}" for f in i.findings],
        f"- Team: {i.team or '-'}; account {i.sub_account or 'all'} ({i.sub_account_id or '-'}); provider {i.provider or 'all'}",
        "",
        "Top contributors:",
        *[f"- `{c.name}` ({c.dimension}): {money(c.actual)} vs {money(c.expected)} ({money(c.delta, signed=True)})"
          for c in i.top_contributors],
        "",
        f"Dagster: {asset_link(dagster_url, i.partition)}",
        f"Incident id: {i.incident_id}" + (f"; report: {report_ref}" if report_ref else ""),
    ]
    return "\n".join(lines) + "\n"


def thread_reply(incident: Incident, note: str, withdrawn: bool = False) -> dict:
    """What changed, posted in the alert's thread (the head message is edited to the new figures)."""
    i = incident
    icon = ":white_check_mark:" if i.status == "resolved" or withdrawn or i.feedback else SEVERITY_ICON[i.severity]
    text = (f"{escape_mrkdwn(note)} Now: {money(i.actual_usd)} actual vs {money(i.expected_usd)} expected on "
            f"{i.peak_label}; {incident_summary(i)}.")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {text}"}}]}
