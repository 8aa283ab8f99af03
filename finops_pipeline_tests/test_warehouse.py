"""The warehouse schema: a database file of the previous release opens with today's code and
keeps every row; the schema files apply once."""

from __future__ import annotations

from pathlib import Path

import duckdb

from finops_pipeline.sources.focus import FOCUS_COLUMNS, LINEAGE_COLUMNS
from finops_pipeline.warehouse import migrate, table_columns
from finops_pipeline.warehouse.migrations import migration_files
from finops_pipeline.warehouse.resource import WarehouseResource

PREVIOUS_RELEASE = Path(__file__).parent / "fixtures" / "previous_release" / "warehouse.sql"
TABLES = ["raw_billing", "raw_billing_quarantine", "cost_forecasts", "forecast_fits", "anomalies", "incidents",
          "incident_feedback", "alert_ledger", "alert_outbox", "anomaly_reports"]


def _counts(con) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_a_database_of_the_previous_release_is_migrated_without_losing_a_row(tmp_path):
    path = tmp_path / "finops.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(PREVIOUS_RELEASE.read_text())
        before = _counts(con)
        money = con.execute("SELECT sum(BilledCost), sum(EffectiveCost) FROM raw_billing").fetchone()
    assert all(before.values())
    # The resource brings the file up to date once per run, as a run starts.
    warehouse = WarehouseResource(database=str(path))
    warehouse.setup_for_execution(__import__("dagster").build_init_resource_context())
    with warehouse.connect() as con:
        assert _counts(con) == before
        assert con.execute("SELECT sum(BilledCost), sum(EffectiveCost) FROM raw_billing").fetchone() == money
        applied = [name for (name,) in con.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()]
        assert applied == [name for _, name, _ in migration_files()]
        assert migrate(con) == []  # applied once: a second run changes nothing
        # The new code reads and writes it: the incident answered in the old release is still answered.
        from finops_pipeline.feedback import accepted_levels, mark_anomalies

        mark_anomalies(con)
        assert con.execute("SELECT status FROM anomalies").fetchone() == ("expected",)
        assert list(accepted_levels(con)) == ["sub_account_service:AWS/098765432109/AWS Lambda"]
        # The ledger's key is named for what it holds, and the sent alert is still there.
        assert con.execute("SELECT incident_id, message_ref FROM alert_ledger").fetchall() == [
            ("a-1", "outbox/2025-05-12_a-1.json")]
        assert con.execute("SELECT incident_ids FROM anomaly_reports").fetchall() == [('["a-1"]',)]


def test_a_new_database_gets_every_table_with_the_focus_columns(tmp_path):
    with duckdb.connect(str(tmp_path / "new.duckdb")) as con:
        assert migrate(con) == [name for _, name, _ in migration_files()]
        assert {*TABLES, "billing_deliveries"} <= {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        # Columns a later FOCUS version adds come after the lineage ones: ALTER TABLE appends.
        assert sorted(table_columns(con, "raw_billing")) == sorted([*FOCUS_COLUMNS, *LINEAGE_COLUMNS])
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'raw_billing'").fetchall())
        assert types["BilledCost"] == "DECIMAL(18,8)" and types["ConsumedQuantity"] == "DECIMAL(38,12)" and types["ChargePeriodStart"] == "TIMESTAMP WITH TIME ZONE"
