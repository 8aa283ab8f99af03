"""FOCUS export files into raw_billing: versions 1.0, 1.2 and 1.3, CSV, CSV.gz and Parquet, and
every bad file rejected whole with the file, column and row count named."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import materialize

from finops_pipeline.defs.ingest.assets import build_raw_billing
from finops_pipeline.warehouse.resource import WarehouseResource
from finops_pipeline.settings import load_settings
from finops_pipeline.sources import demo
from finops_pipeline.sources.focus import TIMESTAMP_COLUMNS
from finops_pipeline.sources.base import ExportFiles
from finops_pipeline.sources.staging import discover, load_files, stage_files
from finops_pipeline.sources.validation import load_staged
from finops_pipeline.warehouse import migrate
from finops_pipeline_tests.conftest import range_tags
from finops_pipeline_tests.focus_exports import write_export

SPEC_SAMPLES = Path(__file__).parent / "fixtures" / "focus_spec_samples"


def load(tmp_path: Path, focus_path: Path | str, start: str, end: str | None = None, raise_on_error: bool = True,
         source: str = "focus", allow_deletes: bool = False, instance=None):
    settings = load_settings({"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_SOURCE": source,
                              "FINOPS_FOCUS_PATH": str(focus_path)})
    config = {"ops": {"raw_billing": {"config": {"allow_deletes": True}}}} if allow_deletes else None
    return materialize([build_raw_billing(settings)], resources={"warehouse": WarehouseResource(database=str(settings.duckdb_path))},
                       tags=range_tags(start, end or start), raise_on_error=raise_on_error, run_config=config,
                       instance=instance)


def query(tmp_path: Path, sql: str):
    with duckdb.connect(str(tmp_path / "finops.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def error_of(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.event_specific_data.error.cause.message if failure.event_specific_data.error.cause else \
        failure.event_specific_data.error.message


def test_reads_every_version_and_format_into_typed_focus_columns(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "BILLING_PERIOD=2025-03" / "part-0.parquet", date(2025, 3, 1), date(2025, 3, 2), "1.0")
    write_export(exports / "BILLING_PERIOD=2025-03" / "part-1.csv", date(2025, 3, 2), date(2025, 3, 3), "1.2")
    write_export(exports / "azure" / "run-7" / "part-0.csv.gz", date(2025, 3, 3), date(2025, 3, 4), "1.3")
    assert load(tmp_path, exports, "2025-03-01", "2025-03-03").success

    expected = demo.generate(date(2025, 3, 1), date(2025, 3, 4))
    rows, billed, effective = query(tmp_path, "SELECT count(*), sum(BilledCost), sum(EffectiveCost) FROM raw_billing")[0]
    assert rows == len(expected)
    assert float(billed) == pytest.approx(expected.BilledCost.sum(), abs=0.01)
    assert float(effective) == pytest.approx(expected.EffectiveCost.sum(), abs=0.01)
    # Identifiers keep their leading zeros, whatever the format.
    assert query(tmp_path, "SELECT DISTINCT x_SourceFile LIKE '%.parquet' FROM raw_billing WHERE SubAccountId = '098765432109'")
    assert {r[0] for r in query(tmp_path, "SELECT DISTINCT BillingAccountId FROM raw_billing")} >= {"012345678901"}
    # 1.3's ServiceProviderName lands in ProviderName; x_ columns and Tags survive as JSON.
    providers = query(tmp_path, "SELECT DISTINCT ProviderName FROM raw_billing WHERE x_SourceFile LIKE '%.csv.gz'")
    assert {p[0] for p in providers} == {"AWS", "Microsoft", "Google Cloud"}
    extra = query(tmp_path, "SELECT DISTINCT x_ProviderColumns->>'$.x_DiscountProgram' FROM raw_billing WHERE x_SourceFile LIKE '%.gz'")
    assert extra == [('{"discount": "edp"}',)]
    assert query(tmp_path, "SELECT count(*) FROM raw_billing WHERE Tags->>'$.team' = 'web'")[0][0] > 0
    days = query(tmp_path, "SELECT min(ChargePeriodStart), max(ChargePeriodStart) FROM raw_billing")[0]
    assert str(days[0].astimezone().date()) == "2025-03-01" and days[1].utcoffset() is not None


def test_the_one_pass_load_gives_exactly_the_rows_of_the_row_by_row_validator(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "a.parquet", date(2025, 3, 1), date(2025, 3, 2), "1.0")
    write_export(exports / "b.csv", date(2025, 3, 2), date(2025, 3, 3), "1.2")
    write_export(exports / "c.csv.gz", date(2025, 3, 3), date(2025, 3, 4), "1.3")
    files, start, end = discover(str(exports)), date(2025, 3, 1), date(2025, 3, 4)
    tables = []
    for one_pass in (True, False):
        with duckdb.connect() as con:
            migrate(con)
            if one_pass:
                load_files(con, ExportFiles(tuple(files), "exports"), "focus", start, end)
            else:
                stage_files(con, files, start, end)
                load_staged(con, "focus", start, end)
            # CSV rows are numbered only when a file is rejected: the row-by-row path numbers them.
            tables.append(con.execute(
                "SELECT * EXCLUDE (x_SourceRow) FROM raw_billing ORDER BY x_SourceFile, ChargePeriodStart, ResourceId, "
                "SkuId, ChargeCategory, BilledCost, EffectiveCost, Tags::VARCHAR").fetchall())
    assert len(tables[0]) == len(demo.generate(start, end)) and tables[0] == tables[1]


@pytest.mark.fault_probe
def test_a_bad_row_fails_the_partition_whole_and_is_quarantined(tmp_path):
    exports = tmp_path / "exports"
    good = write_export(exports / "day.csv", date(2025, 3, 1), date(2025, 3, 2))
    assert load(tmp_path, exports, "2025-03-01").success
    before = query(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")

    write_export(good, date(2025, 3, 1), date(2025, 3, 2), BilledCost=(3, "12.50 USD"), EffectiveCost=(2, "n/a"))
    result = load(tmp_path, exports, "2025-03-01", raise_on_error=False)
    assert not result.success
    message = error_of(result)
    assert "source focus: billing period 2025-03 rejected, nothing of it written" in message
    assert f"{good}: column BilledCost: 3 row(s) not a number" in message
    assert f"{good}: column EffectiveCost: 2 row(s) not a number" in message
    # Nothing half-written: the day still holds the previous good load.
    assert query(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before
    quarantined = query(tmp_path, "SELECT column_name, row_number, row_values->>'$.BilledCost' FROM raw_billing_quarantine ORDER BY ALL")
    assert [q[0] for q in quarantined].count("BilledCost") == 3 and ("BilledCost", 1, "12.50 USD") in quarantined
    # A re-run replaces the quarantine entries instead of piling them up.
    load(tmp_path, exports, "2025-03-01", raise_on_error=False)
    assert query(tmp_path, "SELECT count(*) FROM raw_billing_quarantine")[0][0] == len(quarantined)


def test_missing_mandatory_column_names_the_file_and_rows(tmp_path):
    path = write_export(tmp_path / "exports" / "day.csv", date(2025, 3, 1), date(2025, 3, 2))
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * EXCLUDE (BillingCurrency) FROM read_csv('{path}', all_varchar=true)) TO '{path}' (HEADER)")
    message = error_of(load(tmp_path, tmp_path / "exports", "2025-03-01", raise_on_error=False))
    total = len(demo.generate(date(2025, 3, 1), date(2025, 3, 2)))
    assert message.endswith(f"{path}: missing mandatory FOCUS column(s) BillingCurrency ({total} rows, nothing loaded)\n")


@pytest.mark.fault_probe
def test_mixed_currency_in_one_billing_account_is_an_error_not_a_sum(tmp_path):
    write_export(tmp_path / "exports" / "day.csv", date(2025, 3, 1), date(2025, 3, 2), BillingCurrency=(1, "EUR"))
    message = error_of(load(tmp_path, tmp_path / "exports", "2025-03-01", raise_on_error=False))
    assert "column BillingCurrency:" in message and "mixed currencies in one billing account" in message


@pytest.mark.fault_probe
def test_unreadable_files_are_named(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "ok.csv", date(2025, 3, 1), date(2025, 3, 2))
    truncated = exports / "cut.csv.gz"
    data = gzip.compress((exports / "ok.csv").read_bytes())
    truncated.write_bytes(data[: len(data) // 2])
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    assert f"{truncated}: cannot be read as FOCUS" in message
    truncated.unlink()
    (exports / "empty.csv").write_bytes(b"")
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    assert str(exports / "empty.csv") in message


@pytest.mark.fault_probe
def test_the_same_export_delivered_twice_counts_once(tmp_path):
    """The same rows as .csv and .csv.gz (or copied into a second folder) are one delivery: loaded
    once, the other file recorded as a duplicate, not summed and not refused."""
    exports = tmp_path / "exports"
    first = write_export(exports / "run-1" / "part-0.csv", date(2025, 3, 1), date(2025, 3, 2))
    gz = exports / "run-1" / "part-0.csv.gz"
    gz.write_bytes(gzip.compress(first.read_bytes()))
    copy = exports / "run-2" / "part-0.csv"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    assert load(tmp_path, exports, "2025-03-01").success
    expected = demo.generate(date(2025, 3, 1), date(2025, 3, 2))
    rows, billed = query(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")[0]
    assert rows == len(expected) and float(billed) == pytest.approx(expected.BilledCost.sum(), abs=0.01)
    statuses = dict(query(tmp_path, "SELECT status, count(*) FROM billing_deliveries GROUP BY 1"))
    assert statuses == {"counted": 1, "duplicate": 2}
    reasons = [r for (r,) in query(tmp_path, "SELECT status_reason FROM billing_deliveries WHERE status = 'duplicate'")]
    assert all(r.startswith("same line items as ") for r in reasons)


def test_focus_spec_samples_are_rejected_with_file_column_and_rows(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(SPEC_SAMPLES / "commitment_discount_usage_scenario_1.csv", exports)
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    assert "commitment_discount_usage_scenario_1.csv: missing mandatory FOCUS column(s) BillingAccountId, " \
           "BillingCurrency, ServiceName, ProviderName (1 rows, nothing loaded)" in message
    (exports / "commitment_discount_usage_scenario_1.csv").unlink()
    shutil.copy(SPEC_SAMPLES / "simple_saas_agreements_c.csv", exports)
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    sample = exports / "simple_saas_agreements_c.csv"
    assert f"nothing loaded from {sample}: rows with no usable charge period" in message
    assert "column BilledCost: 3 row(s) not a number" in message  # "$10,100.00 "
    assert "column ChargePeriodStart: 3 row(s) not an ISO 8601 timestamp" in message  # 4/1/25, not the year 4
    assert query(tmp_path, "SELECT count(DISTINCT row_number) FROM raw_billing_quarantine")[0][0] == 3


def _restate(path: Path, days: set[str], factor: float) -> None:
    """Rewrite ``path`` in place with the usage costs of ``days`` scaled, like a provider's restatement."""
    with duckdb.connect() as con:
        frame = con.execute(f"SELECT * FROM read_csv('{path}', all_varchar=true)").df()
        hit = frame.ChargePeriodStart.str[:10].isin(days) & (frame.ChargeCategory == "Usage")
        for column in ("BilledCost", "EffectiveCost"):
            frame.loc[hit, column] = (frame.loc[hit, column].astype(float) * factor).round(6).astype(str)
        con.register("frame", frame)
        con.execute(f"COPY frame TO '{path}' (HEADER)")


@pytest.mark.fault_probe
def test_a_restated_billing_period_reloads_exactly_the_changed_days(tmp_path):
    from dagster import build_sensor_context

    from finops_pipeline.defs.ingest.sensors import build_restatements_sensor

    exports = tmp_path / "exports"
    march = write_export(exports / "BILLING_PERIOD=2025-03" / "export.csv", date(2025, 3, 1), date(2025, 4, 1))
    assert load(tmp_path, exports, "2025-03-01", "2025-03-31").success
    sensor = build_restatements_sensor(load_settings({"FINOPS_SOURCE": "focus", "FINOPS_FOCUS_PATH": str(exports)}))

    def tick(cursor):
        return sensor(build_sensor_context(cursor=cursor))

    first = tick(None)
    assert first.run_requests == [] and "Watching 1 export file(s)" in first.skip_reason.skip_message
    assert tick(first.cursor).run_requests == []  # nothing changed

    before = dict(query(tmp_path, "SELECT CAST(ChargePeriodStart AS DATE)::VARCHAR, sum(EffectiveCost) FROM raw_billing GROUP BY 1"))
    _restate(march, {"2025-03-10", "2025-03-11"}, 1.5)
    second = tick(first.cursor)
    (request,) = second.run_requests
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == \
        ("2025-03-10", "2025-03-11")
    assert tick(second.cursor).run_requests == []  # the same restatement is requested once

    _restate(march, {"2025-03-03", "2025-03-20"}, 0.9)
    third = tick(second.cursor)
    assert [(r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in third.run_requests] == [("2025-03-03", "2025-03-03"), ("2025-03-20", "2025-03-20")]

    # Running the first request reloads those two days and leaves every other day as it was.
    assert load(tmp_path, exports, "2025-03-10", "2025-03-11").success
    after = dict(query(tmp_path, "SELECT CAST(ChargePeriodStart AS DATE)::VARCHAR, sum(EffectiveCost) FROM raw_billing GROUP BY 1"))
    changed = {d for d in before if before[d] != after[d]}
    assert changed == {"2025-03-10", "2025-03-11"}
    assert float(after["2025-03-10"]) > 1.3 * float(before["2025-03-10"])


@pytest.mark.fault_probe
def test_several_sources_load_side_by_side_and_one_failing_keeps_the_others(tmp_path):
    exports = tmp_path / "exports"
    export = write_export(exports / "day.csv", date(2025, 3, 1), date(2025, 3, 2))
    assert load(tmp_path, exports, "2025-03-01", source="demo,focus").success
    per_source = dict(query(tmp_path, "SELECT x_Source, count(*) FROM raw_billing GROUP BY 1"))
    day = len(demo.generate(date(2025, 3, 1), date(2025, 3, 2)))  # the cloud bill the export holds
    served = len(demo.bill(date(2025, 3, 1), date(2025, 3, 2)))  # the demo source serves its AI bill too
    assert per_source == {"demo": served, "focus": day}

    # The export goes bad: the focus rows stay as they were, the demo rows are reloaded, the run fails.
    write_export(export, date(2025, 3, 1), date(2025, 3, 2), EffectiveCost=(1, "oops"))
    result = load(tmp_path, exports, "2025-03-01", raise_on_error=False, source="demo,focus")
    assert not result.success and "source focus:" in error_of(result) and "EffectiveCost: 1 row(s) not a number" in error_of(result)
    assert dict(query(tmp_path, "SELECT x_Source, count(*) FROM raw_billing GROUP BY 1")) == per_source

    # Dropping a source from FINOPS_SOURCE removes its rows from the window on the next load.
    assert load(tmp_path, exports, "2025-03-01", source="demo").success
    assert dict(query(tmp_path, "SELECT x_Source, count(*) FROM raw_billing GROUP BY 1")) == {"demo": served}


def test_naive_timestamps_are_utc_days_for_the_loader_and_the_sensor(tmp_path):
    from finops_pipeline.sources.staging import day_fingerprints

    path = write_export(tmp_path / "exports" / "day.csv", date(2025, 3, 1), date(2025, 3, 2))
    with duckdb.connect() as con:  # the same export without the trailing Z
        frame = con.execute(f"SELECT * FROM read_csv('{path}', all_varchar=true)").df()
        for column in TIMESTAMP_COLUMNS:
            frame[column] = frame[column].str.rstrip("Z")
        con.register("frame", frame)
        con.execute(f"COPY frame TO '{path}' (HEADER)")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'Europe/Berlin'")  # a host east of UTC
        assert set(day_fingerprints(con, path)) == {"2025-03-01"}
    assert load(tmp_path, tmp_path / "exports", "2025-03-01").success
    assert query(tmp_path, "SELECT DISTINCT CAST(timezone('UTC', ChargePeriodStart) AS DATE)::VARCHAR FROM raw_billing") == [("2025-03-01",)]


@pytest.mark.fault_probe
@pytest.mark.integration
def test_negative_usage_is_loaded_scored_and_reported(tmp_path):
    """FOCUS allows usage that costs less than nothing (a refund booked as usage): it is loaded,
    recorded in raw_billing's metadata and a warning check naming the file, and the run goes on
    to score it. A Correction is not even reported."""
    from dagster import DagsterInstance

    from finops_pipeline.definitions import build_definitions

    exports = tmp_path / "exports"
    bill = demo.generate(date(2025, 3, 1), date(2025, 3, 3))
    usage = bill.index[bill.ChargeCategory == "Usage"]
    bill.loc[usage[:2], "ChargeClass"] = "Correction"  # corrections may be negative
    bill.loc[usage[:3], ["BilledCost", "EffectiveCost"]] = -12.5  # the third is a refund booked as usage
    write_export(exports / "march.csv", date(2025, 3, 1), date(2025, 3, 3), frame=bill)
    settings = load_settings({"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_SOURCE": "focus", "FINOPS_FOCUS_PATH": str(exports)})
    with DagsterInstance.ephemeral() as instance:
        result = build_definitions(settings).resolve_job_def("daily_cost_pipeline").execute_in_process(
            instance=instance, tags=range_tags("2025-03-01", "2025-03-02"), raise_on_error=False)
        (check,) = [e.asset_check_evaluation_data for e in result.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"
                    and e.asset_check_evaluation_data.check_name == "usage_is_not_negative"]
        materialized = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    assert result.success
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["line_items"].value == 1
    assert list(check.metadata["by_file"].value) == [str(exports / "march.csv")]
    assert materialized["raw_billing"].metadata["negative_usage"].value == {
        str(exports / "march.csv"): {"line_items": 1, "effective_cost": -12.5}}
    assert {"cost_forecasts", "anomalies"} <= set(materialized)
    assert query(tmp_path, "SELECT count(*) FROM raw_billing WHERE EffectiveCost < 0")[0][0] == 3
