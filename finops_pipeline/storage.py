"""DuckDB table definitions and the all-or-nothing write every partitioned asset uses."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from finops_pipeline.sources.focus import FOCUS_COLUMNS, LINEAGE_COLUMNS

RAW_BILLING_COLUMNS: dict[str, str] = {**FOCUS_COLUMNS, **LINEAGE_COLUMNS}

COST_FORECASTS_COLUMNS: dict[str, str] = {
    "forecast_date": "DATE",  # the partition day the forecast was made for
    "target_day": "DATE",
    "horizon_days": "INTEGER",
    "series_key": "VARCHAR",
    "series_level": "VARCHAR",
    "provider": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "service_name": "VARCHAR",
    "expected_cost": "DOUBLE",
    "lower_bound": "DOUBLE",
    "upper_bound": "DOUBLE",
    "model": "VARCHAR",
    "trained_through": "DATE",
    "training_days": "INTEGER",
}

ANOMALIES_COLUMNS: dict[str, str] = {
    "anomaly_id": "VARCHAR PRIMARY KEY",
    "period_start": "TIMESTAMPTZ",
    "granularity": "VARCHAR",
    "series_level": "VARCHAR",
    "series_key": "VARCHAR",
    "provider": "VARCHAR",
    "sub_account_id": "VARCHAR",
    "sub_account_name": "VARCHAR",
    "service_name": "VARCHAR",
    "team": "VARCHAR",
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
    "top_contributors": "JSON",
    "detected_at": "TIMESTAMPTZ",
}

ALERT_LEDGER_COLUMNS: dict[str, str] = {
    "anomaly_id": "VARCHAR PRIMARY KEY",
    "report_id": "VARCHAR",
    "destination": "VARCHAR",  # slack or outbox
    "channel": "VARCHAR",
    "message_ref": "VARCHAR",  # Slack message ts, or the outbox file
    "sent_at": "TIMESTAMPTZ",
}

ANOMALY_REPORTS_COLUMNS: dict[str, str] = {
    "report_id": "VARCHAR PRIMARY KEY",
    "created_at": "TIMESTAMPTZ",
    "anomaly_ids": "JSON",
    "model": "VARCHAR",
    "used_fallback": "BOOLEAN",
    "fallback_reason": "VARCHAR",
    "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER",
    "markdown": "VARCHAR",
}

TABLES: dict[str, Mapping[str, str]] = {
    "raw_billing": RAW_BILLING_COLUMNS,
    "cost_forecasts": COST_FORECASTS_COLUMNS,
    "anomalies": ANOMALIES_COLUMNS,
    "alert_ledger": ALERT_LEDGER_COLUMNS,
    "anomaly_reports": ANOMALY_REPORTS_COLUMNS,
}


def ensure_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    columns = ", ".join(f'"{name}" {dtype}' for name, dtype in TABLES[table].items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'",
            [table],
        ).fetchone()[0]
    )


def replace_window(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    where_sql: str,
    params: list,
) -> int:
    """Delete the rows matching ``where_sql`` and insert ``frame`` in one transaction.

    Readers see either the old window or the new one, never a mix; a failure leaves the table as
    it was. Returns the number of rows deleted.
    """
    ensure_table(con, table)
    columns = list(TABLES[table])
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: frame lacks columns {missing}")
    con.execute("BEGIN TRANSACTION")
    try:
        deleted = con.execute(f"DELETE FROM {table} WHERE {where_sql}", params).fetchone()[0]
        if len(frame):
            con.register("_incoming", frame[columns])
            quoted = ", ".join(f'"{c}"' for c in columns)
            con.execute(f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM _incoming")
            con.unregister("_incoming")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(deleted)
