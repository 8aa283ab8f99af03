"""Money formatting, and the figures table every report ends with (the incidents themselves:
``alerting.incident``)."""

from __future__ import annotations

import re

from finops_pipeline.alerting.incident import Incident


def money(value: float, signed: bool = False) -> str:
    """$1,234.50; with ``signed``, +$1,234.50 / -$1,234.50 for changes."""
    sign = "-" if value < 0 else ("+" if signed else "")
    return f"{sign}${abs(value):,.2f}"


def figures_table(incidents: list[Incident]) -> str:
    lines = [
        "| Day | Severity | Series | Team | Actual | Expected | Band | Impact | Deviation |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i in incidents:
        cells = [
            i.peak_label, i.severity, i.series_description, i.team or "-", money(i.actual_usd),
            money(i.expected_usd), f"{money(i.band.lower)} – {money(i.band.upper)}",
            money(i.impact_usd, signed=True), f"{i.deviation_pct:+.1f}%",
        ]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


_MARKDOWN = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def escape_markdown(text: object) -> str:
    """``text`` (billing data: a model or key name) with markdown's special characters escaped,
    so it reads as written and cannot add a link or a heading."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def findings_list(incidents: list[Incident]) -> str:
    """What the rules saw on each incident that has findings (an AI series' tokens, cache share,
    requests and $ per 1M tokens; an idle GPU's minutes), as a markdown list; empty without any."""
    lines = [f"- {escape_markdown(i.series_description)} ({i.peak_label}): {escape_markdown(f)}"
             for i in incidents for f in i.findings]
    return "\n".join(["", "What the rules saw:", "", *lines]) if lines else ""
