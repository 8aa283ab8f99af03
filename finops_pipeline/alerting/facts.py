"""Money formatting, and the figures table every report ends with (the incidents themselves:
``alerting.incident``)."""

from __future__ import annotations

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
