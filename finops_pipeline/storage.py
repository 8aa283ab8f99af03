"""DuckDB table definitions and the all-or-nothing write every partitioned asset uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date

import duckdb
import pandas as pd
from dagster_duckdb import DuckDBResource

from finops_pipeline.sources.focus import FOCUS_COLUMNS, LINEAGE_COLUMNS

RAW_BILLING_COLUMNS: dict[str, str] = {**FOCUS_COLUMNS, **LINEAGE_COLUMNS}

COST_FORECASTS_COLUMNS: dict[str, str] = {
    "granularity": "VARCHAR",  # daily or hourly
    "forecast_period": "TIMESTAMPTZ",  # the partition period the forecast was made for
    "target_period": "TIMESTAMPTZ",
    "horizon": "INTEGER",  # target_period - forecast_period, in periods
    "series_key": "VARCHAR",
    "series_level": "VARCHAR",
    "provider": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "service_name": "VARCHAR",
    "expected_cost": "DOUBLE",
    "lower_bound": "DOUBLE",
    "upper_bound": "DOUBLE",
    "model": "VARCHAR",
    "trained_through": "TIMESTAMPTZ",  # the last period the fit saw
    "training_periods": "INTEGER",
}

# One row per Prophet fit: its window's predictions, for the runs of the days after its refit
# anchor to reuse instead of fitting again (see detection.forecasting.Fits).
FORECAST_FITS_COLUMNS: dict[str, str] = {
    "fit_key": "VARCHAR",  # a hash of everything the fit depends on: its training data, anchor and settings
    "granularity": "VARCHAR",
    "anchor": "TIMESTAMPTZ",  # the refit anchor: its first predicted period
    "series_key": "VARCHAR",  # the series it was first fitted for (identical series share a fit)
    "model": "VARCHAR",
    "training_periods": "INTEGER",
    "expected_cost": "DOUBLE[]",  # one per period from the anchor
    "lower_bound": "DOUBLE[]",
    "upper_bound": "DOUBLE[]",
    "fitted_at": "TIMESTAMPTZ",
}

# Which cost series a row is about.
SERIES_COLUMNS: dict[str, str] = {
    "granularity": "VARCHAR",  # daily or hourly
    "series_level": "VARCHAR",
    "series_key": "VARCHAR",
    "provider": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "sub_account_name": "VARCHAR",
    "service_name": "VARCHAR",
    "team": "VARCHAR",
}

ANOMALIES_COLUMNS: dict[str, str] = {
    "anomaly_id": "VARCHAR PRIMARY KEY",
    "period_start": "TIMESTAMPTZ",
    **SERIES_COLUMNS,
    "direction": "VARCHAR",
    "actual_cost": "DOUBLE",
    "expected_cost": "DOUBLE",
    "lower_bound": "DOUBLE",
    "upper_bound": "DOUBLE",
    "impact_usd": "DOUBLE",
    "deviation_pct": "DOUBLE",
    "robust_z": "DOUBLE",
    "severity": "VARCHAR",
    "detectors": "VARCHAR",
    "top_contributors": "JSON",  # the root cause's first dimension: resources for a service, sub-account × service for the total
    "root_cause": "JSON",  # {dimension: top 3 items by change, with actual, expected, delta}
    "detected_at": "TIMESTAMPTZ",
    "incident_id": "VARCHAR",  # the anomaly_id of the first anomaly of its run (see detection.incidents)
    "status": "VARCHAR",  # NULL, or a person's answer on its incident: expected, planned, not_an_issue
    # The anomaly of a finer series, same period and direction, carrying at least half its $
    # impact (see detection.series.explained_by): NULL for the anomalies worth their own alert.
    "explained_by": "VARCHAR",
}

INCIDENTS_COLUMNS: dict[str, str] = {
    "incident_id": "VARCHAR PRIMARY KEY",
    **SERIES_COLUMNS,
    "direction": "VARCHAR",
    "start_period": "TIMESTAMPTZ",
    "peak_period": "TIMESTAMPTZ",
    "latest_period": "TIMESTAMPTZ",
    "periods": "INTEGER",
    "total_excess_usd": "DOUBLE",
    "peak_anomaly_id": "VARCHAR",
    "severity": "VARCHAR",  # the highest any of its periods reached
    "status": "VARCHAR",  # open, or resolved (a later period was back in its band)
    "feedback": "VARCHAR",  # NULL, or expected, planned, not_an_issue (see defs.feedback)
    "explained_by": "VARCHAR",  # the finer incident that explains its peak; such an incident sends no alert of its own
}

INCIDENT_FEEDBACK_COLUMNS: dict[str, str] = {
    "incident_id": "VARCHAR",
    "series_key": "VARCHAR",
    "start_period": "TIMESTAMPTZ",  # the incident as it stood when answered
    "latest_period": "TIMESTAMPTZ",
    "verdict": "VARCHAR",  # expected, planned or not_an_issue
    "note": "VARCHAR",
    "given_by": "VARCHAR",
    "given_at": "TIMESTAMPTZ",
}

ALERT_LEDGER_COLUMNS: dict[str, str] = {
    "anomaly_id": "VARCHAR PRIMARY KEY",
    "report_id": "VARCHAR",
    "destination": "VARCHAR",  # slack or outbox
    "channel": "VARCHAR",
    "message_ref": "VARCHAR",  # Slack message ts, or the outbox file
    "sent_at": "TIMESTAMPTZ",
    "status": "VARCHAR",  # sent, updated (re-scored to other figures) or withdrawn (no longer an anomaly)
    "revision": "INTEGER",
    "announced": "JSON",  # the figures last announced
    "updated_at": "TIMESTAMPTZ",
    "head_message_id": "VARCHAR",  # the alert_outbox row of the alert's first message (its thread's head)
}

# The transactional outbox: every message is written here, in the transaction that decides to
# send it, before anything is sent; delivery then moves it pending → sending → sent. A crash
# mid-send leaves it `sending`, and the next delivery looks it up in Slack before sending again.
ALERT_OUTBOX_COLUMNS: dict[str, str] = {
    "message_id": "VARCHAR PRIMARY KEY",  # a hash of what it is for: incident, kind, revision
    "seq": "BIGINT",  # enqueue order: a thread's head goes before its replies
    "incident_id": "VARCHAR",
    "kind": "VARCHAR",  # alert (a thread's head), update (edit of the head), reply (in its thread), chart, digest
    "head_message_id": "VARCHAR",  # for update, reply and chart: the alert they belong to
    "destination": "VARCHAR",  # slack, or outbox (files, when Slack is not configured)
    "channel": "VARCHAR",  # as routed: a name (#finops) or an id
    "payload": "JSON",  # text and blocks, or the chart's file name and title
    "chart_path": "VARCHAR",
    "status": "VARCHAR",  # pending, sending or sent
    "attempts": "INTEGER",
    "last_error": "VARCHAR",
    "next_attempt_at": "TIMESTAMPTZ",
    "enqueued_at": "TIMESTAMPTZ",
    "sending_since": "TIMESTAMPTZ",
    "sent_at": "TIMESTAMPTZ",
    "channel_id": "VARCHAR",  # the id Slack answered with
    "message_ref": "VARCHAR",  # the Slack ts (the file id for a chart), or the outbox file
}

ANOMALY_REPORTS_COLUMNS: dict[str, str] = {
    "row_id": "VARCHAR PRIMARY KEY",  # report_id:run, or report_id:<incident_id>
    "report_id": "VARCHAR",  # one per alert run with something to report
    "kind": "VARCHAR",  # run (the summary, and the whole report as markdown) or incident (its analysis)
    "incident_id": "VARCHAR",
    "created_at": "TIMESTAMPTZ",
    "anomaly_ids": "JSON",  # the incidents the report covers
    "model": "VARCHAR",
    "used_fallback": "BOOLEAN",
    "fallback_reason": "VARCHAR",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "cost_usd": "DOUBLE",
    "latency_s": "DOUBLE",
    "requests": "INTEGER",
    "summary": "VARCHAR",  # one paragraph, shown in the Slack alert
    "analysis": "JSON",  # the validated structured reply (hypotheses, actions, prevention, savings), NULL for a template
    "markdown": "VARCHAR",
}

RAW_BILLING_QUARANTINE_COLUMNS: dict[str, str] = {
    "quarantined_at": "TIMESTAMPTZ",
    "partition_start": "TIMESTAMPTZ",
    "partition_end": "TIMESTAMPTZ",
    "source": "VARCHAR",
    "file": "VARCHAR",
    "row_number": "BIGINT",
    "column_name": "VARCHAR",
    "reason": "VARCHAR",
    "row_values": "JSON",  # the row as the file had it, every column as text
}

TABLES: dict[str, Mapping[str, str]] = {
    "raw_billing": RAW_BILLING_COLUMNS,
    "raw_billing_quarantine": RAW_BILLING_QUARANTINE_COLUMNS,
    "cost_forecasts": COST_FORECASTS_COLUMNS,
    "forecast_fits": FORECAST_FITS_COLUMNS,
    "anomalies": ANOMALIES_COLUMNS,
    "incidents": INCIDENTS_COLUMNS,
    "incident_feedback": INCIDENT_FEEDBACK_COLUMNS,
    "alert_ledger": ALERT_LEDGER_COLUMNS,
    "alert_outbox": ALERT_OUTBOX_COLUMNS,
    "anomaly_reports": ANOMALY_REPORTS_COLUMNS,
}


def utc_bounds(start: date, end: date) -> list[str]:
    """A window of days (dates) or hours (naive UTC datetimes) as TIMESTAMPTZ literals for SQL
    parameters: [start, end) in UTC."""
    return [f"{pd.Timestamp(t):%Y-%m-%d %H:%M:%S}+00" for t in (start, end)]


@contextmanager
def connect(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """``resource.get_connection()``, closed even when the block raises: dagster-duckdb only closes
    on success, and a failed step would otherwise keep holding the file's lock."""
    with resource.get_connection() as con:
        # Never resolve a missing table to a Python variable of the same name (an asset, say):
        # frames are always registered explicitly. Days are UTC days, whatever the host's zone.
        con.execute("SET python_enable_replacements = false")
        con.execute("SET TimeZone = 'UTC'")
        try:
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around the block: committed when it ends, rolled back when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def ensure_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create the table, or add the columns a newer version of the pipeline introduced."""
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in TABLES[table].items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    existing = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'", [table]
    ).fetchall()}
    for name, dtype in TABLES[table].items():
        if name not in existing:
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{name}" {dtype.replace(" PRIMARY KEY", "")}')


def replace_window(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: pd.DataFrame | str,
    where_sql: str,
    params: list,
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Delete the rows matching ``where_sql`` and insert ``rows`` (a DataFrame, or the name of a
    staged table) in one transaction; ``before_commit``, if given, runs inside it after the insert
    (to check the rows, or derive more from them) and may raise.

    Readers see either the old window or the new one, never a mix; a failure leaves the table as
    it was. Returns the number of rows deleted.
    """
    ensure_table(con, table)
    columns = list(TABLES[table])
    if isinstance(rows, pd.DataFrame):
        missing = [c for c in columns if c not in rows.columns]
        if missing:
            raise ValueError(f"{table}: frame lacks columns {missing}")
        con.register("_frame", rows[columns])
        rows = "_frame"
    quoted = ", ".join(f'"{c}"' for c in columns)
    with transaction(con):
        deleted = con.execute(f"DELETE FROM {table} WHERE {where_sql}", params).fetchone()[0]
        con.execute(f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM {rows}")
        if before_commit is not None:
            before_commit()
    return int(deleted)
