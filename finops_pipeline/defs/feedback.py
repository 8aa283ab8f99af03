"""Feedback on incidents: a person marks one `expected`, `planned` or `not_an_issue`.

The answer is stored in `incident_feedback`; from then on the incident's anomalies carry it as
their status, its alert is revised once to say so and then left alone, and no new alert is sent
for it. `expected` and `planned` also tell the forecasts to accept the new level: the series'
training data is no longer clipped from the incident's start, so its band moves to the new level
at the next refit.

Launch `incident_feedback_job` from the UI's launchpad, or from a shell:

    finops-feedback <incident_id> expected --note "new cluster for the Q4 launch" --by alice
"""

import argparse
import os
import sys
from datetime import datetime, timezone

from dagster import Config, DagsterInstance, OpExecutionContext, job, op
from dagster_duckdb import DuckDBResource
from pydantic import Field

from finops_pipeline.storage import connect, ensure_table, transaction

VERDICTS = ("expected", "planned", "not_an_issue")
ACCEPTS_NEW_LEVEL = ("expected", "planned")


class FeedbackConfig(Config):
    incident_id: str = Field(description="The incident, as `incidents.incident_id` or the alert shows it.")
    verdict: str = Field(description="expected, planned or not_an_issue")
    note: str = Field(default="", description="Why, for whoever reads the alert next.")
    given_by: str = Field(default="", description="Who says so.")


def record_feedback(con, incident_id: str, verdict: str, note: str = "", given_by: str = "") -> dict:
    """Store the answer and mark the incident's anomalies with it; returns the incident."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    for table in ("incidents", "anomalies", "incident_feedback"):
        ensure_table(con, table)
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


def mark_anomalies(con) -> None:
    """Give every anomaly the latest answer on its incident. An answer covers the incident it was
    given on as it grows, and after a re-score renames it: same series, periods in common."""
    ensure_table(con, "incident_feedback")
    con.execute(
        """UPDATE anomalies SET status = f.verdict
           FROM (SELECT incident_id, series_key, min(period_start) AS first, max(period_start) AS last
                 FROM anomalies GROUP BY ALL) i,
                (SELECT * FROM incident_feedback QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY given_at DESC) = 1) f
           WHERE anomalies.incident_id = i.incident_id AND f.series_key = i.series_key
             AND f.start_period <= i.last AND f.latest_period >= i.first
             AND anomalies.status IS DISTINCT FROM f.verdict"""
    )


def accepted_levels(con) -> dict[str, object]:
    """Per series, where an `expected` or `planned` incident started: its new level is normal."""
    ensure_table(con, "incident_feedback")
    rows = con.execute(
        """SELECT series_key, min(start_period) FROM incident_feedback
           WHERE verdict IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1""",
        [list(ACCEPTS_NEW_LEVEL)],
    ).fetchall()
    return dict(rows)


@op(description="Store a person's answer on an incident; its alerts stop, and `expected` or `planned` move the baseline.")
def record_incident_feedback(context: OpExecutionContext, config: FeedbackConfig, duckdb: DuckDBResource) -> None:
    with connect(duckdb) as con:
        incident = record_feedback(con, config.incident_id, config.verdict, config.note, config.given_by)
    context.log.info(f"Incident {incident['incident_id']} on {incident['series_key']} marked {config.verdict}")


@job(description="Mark an incident expected, planned or not_an_issue (run config: incident_id, verdict, note, given_by).")
def incident_feedback_job():
    record_incident_feedback()


def main(argv: list[str] | None = None) -> int:
    """`finops-feedback`: the same job from a shell, recorded in the Dagster instance."""
    parser = argparse.ArgumentParser(prog="finops-feedback", description=__doc__.split("\n\n")[0])
    parser.add_argument("incident_id")
    parser.add_argument("verdict", choices=VERDICTS)
    parser.add_argument("--note", default="")
    parser.add_argument("--by", default="", dest="given_by")
    args = parser.parse_args(argv)
    from finops_pipeline.definitions import build_definitions  # not at import: definitions imports this module
    from finops_pipeline.settings import load_settings

    defs = build_definitions(load_settings())
    config = {"incident_id": args.incident_id, "verdict": args.verdict, "note": args.note, "given_by": args.given_by}
    result = defs.resolve_job_def("incident_feedback_job").execute_in_process(
        run_config={"ops": {"record_incident_feedback": {"config": config}}},
        instance=DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        failure = next(e for e in result.all_events if e.is_step_failure)
        error = failure.event_specific_data.error
        print(f"finops-feedback: {(error.cause or error).message.strip()}", file=sys.stderr)
        return 1
    print(f"incident {args.incident_id} marked {args.verdict}")
    return 0
