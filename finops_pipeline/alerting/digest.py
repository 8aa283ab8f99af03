"""The daily digest: a day's anomalies by severity, the incidents still open, the biggest ones,
and the day's and the month's spend against forecast; one Slack message (or outbox file) a day."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from finops_pipeline.alerting.facts import money
from finops_pipeline.alerting.messages import escape_mrkdwn
from finops_pipeline.detection.scoring import SEVERITIES
from finops_pipeline.warehouse import utc_bounds


def digest_figures(con: duckdb.DuckDBPyConnection, day: date, granularity: str, top: int = 5) -> dict:
    """The figures of ``day``'s digest (UTC), each read from the tables."""
    end = day + timedelta(days=1)
    day_bounds = utc_bounds(day, end)
    by_severity = dict(con.execute(
        """SELECT severity, count(*) FROM anomalies WHERE explained_by IS NULL AND granularity = ?
             AND period_start >= ?::TIMESTAMPTZ AND period_start < ?::TIMESTAMPTZ GROUP BY 1""",
        [granularity, *day_bounds]).fetchall())
    open_incidents = dict(con.execute(
        """SELECT severity, count(*) FROM incidents WHERE status = 'open' AND feedback IS NULL AND explained_by IS NULL
             AND granularity = ? AND start_period < ?::TIMESTAMPTZ GROUP BY 1""", [granularity, day_bounds[1]]).fetchall())
    cursor = con.execute(
        """SELECT incident_id, series_key, severity, status, periods, total_excess_usd, start_period, latest_period
           FROM incidents WHERE explained_by IS NULL AND feedback IS NULL AND granularity = ? AND severity <> 'info'
             AND start_period < ?::TIMESTAMPTZ AND (status = 'open' OR latest_period >= ?::TIMESTAMPTZ)
           ORDER BY abs(total_excess_usd) DESC, incident_id LIMIT ?""", [granularity, day_bounds[1], day_bounds[0], top])
    names = [d[0] for d in cursor.description]
    incidents = [dict(zip(names, row)) for row in cursor.fetchall()]

    def spend(first: date) -> dict:
        """Usage cost from ``first`` through ``day`` against the total series' forecast for it."""
        actual = con.execute("SELECT sum(effective_cost) FROM daily_costs WHERE charge_category = 'Usage' AND day >= ? "
                             "AND day < ?", [first, end]).fetchone()[0] if _has(con, "daily_costs") else None
        expected, lower, upper, periods = con.execute(
            """SELECT sum(expected_cost), sum(lower_bound), sum(upper_bound), count(*) FROM cost_forecasts
               WHERE series_key = 'total' AND horizon = 0 AND granularity = ?
                 AND target_period >= ?::TIMESTAMPTZ AND target_period < ?::TIMESTAMPTZ""",
            [granularity, *utc_bounds(first, end)]).fetchone()
        return {"actual_usd": float(actual or 0.0), "expected_usd": float(expected) if periods else None,
                "band_usd": [float(lower), float(upper)] if periods else None}

    return {
        "day": day.isoformat(),
        "anomalies_by_severity": {s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        "open_incidents_by_severity": {s: int(open_incidents.get(s, 0)) for s in SEVERITIES},
        "top_incidents": incidents,
        "day_spend": spend(day),
        "month_to_date_spend": spend(day.replace(day=1)),
    }


def _has(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0])


def _vs_forecast(spend: dict) -> str:
    if spend["expected_usd"] is None:
        return f"{money(spend['actual_usd'])} (no forecast yet)"
    delta = spend["actual_usd"] - spend["expected_usd"]
    pct = f", {delta / spend['expected_usd']:+.1%}" if spend["expected_usd"] else ""
    return (f"{money(spend['actual_usd'])} vs {money(spend['expected_usd'])} forecast "
            f"({money(delta, signed=True)}{pct}; band {money(spend['band_usd'][0])} – {money(spend['band_usd'][1])})")


def digest_message(figures: dict, dagster_url: str) -> dict:
    """Slack ``text`` and ``blocks``, plus the same as markdown for the outbox."""
    counts = ", ".join(f"{n} {s}" for s, n in figures["anomalies_by_severity"].items())
    still_open = ", ".join(f"{n} {s}" for s, n in figures["open_incidents_by_severity"].items())
    lines = [
        f"• `{escape_mrkdwn(i['series_key'])}`: {i['severity']}, {i['status']}, {i['periods']} period(s), "
        f"{money(i['total_excess_usd'], signed=True)} against expected (incident `{i['incident_id']}`)"
        for i in figures["top_incidents"]
    ] or ["• none"]
    text = f"FinOps digest for {figures['day']}: anomalies {counts}; open incidents {still_open}"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Cloud cost digest: {figures['day']}"}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Anomalies that day*\n{counts}"},
            {"type": "mrkdwn", "text": f"*Open incidents*\n{still_open}"},
            {"type": "mrkdwn", "text": f"*Usage spend that day*\n{_vs_forecast(figures['day_spend'])}"},
            {"type": "mrkdwn", "text": f"*Month to date*\n{_vs_forecast(figures['month_to_date_spend'])}"},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Top incidents*\n" + "\n".join(lines)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{dagster_url}/assets/incidents|Incidents in Dagster>"}]},
    ]
    markdown = "\n".join([
        f"# Cloud cost digest: {figures['day']}", "",
        f"- Anomalies that day: {counts}", f"- Open incidents: {still_open}",
        f"- Usage spend that day: {_vs_forecast(figures['day_spend'])}",
        f"- Month to date: {_vs_forecast(figures['month_to_date_spend'])}", "", "Top incidents:",
        *[line.replace("• ", "- ") for line in lines], "",
    ])
    return {"text": text, "blocks": blocks, "markdown": markdown}
