"""Feedback on incidents: a person marks one `expected`, `planned` or `not_an_issue`.

The answer is stored in `incident_feedback`; from then on the incident's anomalies carry it as
their status, its alert is revised once to say so and then left alone, and no new alert is sent
for it. `expected` and `planned` also tell the forecasts to accept the new level: the series'
training data is no longer clipped from the incident's start, so its band moves to the new level
at the next refit.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

from finops_pipeline.warehouse import transaction

VERDICTS = ("expected", "planned", "not_an_issue")
ACCEPTS_NEW_LEVEL = ("expected", "planned")


def record_feedback(con: duckdb.DuckDBPyConnection, incident_id: str, verdict: str, note: str = "",
                    given_by: str = "") -> dict:
    """Store the answer and mark the incident's anomalies with it; returns the incident."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    incident = con.execute(
        "SELECT incident_id, series_key, start_period, latest_period FROM incidents WHERE incident_id = ?", [incident_id]
    ).fetchone()
    if incident is None:
        raise ValueError(f"no incident {incident_id!r} in table incidents (see `SELECT incident_id FROM incidents`)")
    with transaction(con):
        con.execute("INSERT INTO incident_feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [*incident, verdict, note, given_by, datetime.now(timezone.utc)])
        mark_anomalies(con)
    return dict(zip(["incident_id", "series_key", "start_period", "latest_period"], incident))


def mark_anomalies(con: duckdb.DuckDBPyConnection) -> None:
    """Give every anomaly the latest answer on its incident. An answer covers the incident it was
    given on as it grows, and after a re-score renames it: same series, periods in common."""
    con.execute(
        """UPDATE anomalies SET status = f.verdict
           FROM (SELECT incident_id, series_key, min(period_start) AS first, max(period_start) AS last
                 FROM anomalies GROUP BY ALL) i,
                (SELECT * FROM incident_feedback QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY given_at DESC) = 1) f
           WHERE anomalies.incident_id = i.incident_id AND f.series_key = i.series_key
             AND f.start_period <= i.last AND f.latest_period >= i.first
             AND anomalies.status IS DISTINCT FROM f.verdict"""
    )


def accepted_levels(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    """Per series, where an `expected` or `planned` incident started: its new level is normal."""
    rows = con.execute(
        """SELECT series_key, min(start_period) FROM incident_feedback
           WHERE verdict IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1""",
        [list(ACCEPTS_NEW_LEVEL)],
    ).fetchall()
    return dict(rows)
