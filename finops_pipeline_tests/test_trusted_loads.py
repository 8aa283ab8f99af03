"""Billing data you can trust: each test reproduces a way money was lost or doubled without a word
(a header-only export, a vanished file, one export delivered twice, two versions of a billing
period, a quantity too wide, one bad month in a year, a truncated file) through the real asset or
sensor, and shows what happens now."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, build_sensor_context

from finops_pipeline.defs.ingest.assets import ALLOW_DELETES_TAG
from finops_pipeline.defs.ingest.sensors import build_restatements_sensor
from finops_pipeline.settings import load_settings
from finops_pipeline.sources import demo
from finops_pipeline_tests.focus_exports import write_export
from finops_pipeline_tests.test_focus_source import error_of, load, query

pytestmark = pytest.mark.fault_probe

MARCH = (date(2025, 3, 1), date(2025, 3, 6))


def _per_day(tmp_path: Path) -> dict[str, float]:
    return {d: float(c) for d, c in query(
        tmp_path, "SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE)::VARCHAR, sum(EffectiveCost) FROM raw_billing GROUP BY 1")}


def _header_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines()[0] + "\n")


def test_a_header_only_export_never_wipes_loaded_days_unless_allowed(tmp_path):
    exports = tmp_path / "exports"
    export = write_export(exports / "march.csv", *MARCH)
    assert load(tmp_path, exports, "2025-03-01", "2025-03-05").success
    before = _per_day(tmp_path)

    _header_only(export)
    result = load(tmp_path, exports, "2025-03-01", "2025-03-05", raise_on_error=False)
    assert not result.success
    message = error_of(result)
    items = len(demo.generate(*MARCH))
    assert f"5 day(s) that hold {items} line item(s) would be emptied (2025-03-01..2025-03-05)" in message
    assert str(export) in message and "allow_deletes: true" in message
    assert _per_day(tmp_path) == before  # nothing deleted

    # The user says the provider really removed them: the run may, and its tags say so.
    with DagsterInstance.ephemeral() as instance:
        forced = load(tmp_path, exports, "2025-03-01", "2025-03-05", allow_deletes=True, instance=instance)
        assert forced.success
        assert instance.get_run_by_id(forced.run_id).tags[ALLOW_DELETES_TAG] == "true"
    assert _per_day(tmp_path) == {}


def test_a_vanished_export_is_a_data_gap_not_a_restatement(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "a.csv", date(2025, 3, 1), date(2025, 3, 3))
    gone = write_export(exports / "b.csv", date(2025, 3, 3), date(2025, 3, 5))
    assert load(tmp_path, exports, "2025-03-01", "2025-03-04").success
    before = _per_day(tmp_path)
    sensor = build_restatements_sensor(load_settings({"FINOPS_SOURCE": "focus", "FINOPS_FOCUS_PATH": str(exports)}))
    first = sensor(build_sensor_context(cursor=None))

    gone.unlink()  # a lifecycle rule expired it
    tick = sensor(build_sensor_context(cursor=first.cursor))
    assert tick.run_requests == []  # no run that would delete its days
    (event,) = tick.asset_events
    assert event.check_name == "export_files_present" and not event.passed
    assert event.severity == AssetCheckSeverity.WARN
    assert event.metadata["vanished_files"].value == [str(gone)]
    assert (event.metadata["first_day"].value, event.metadata["last_day"].value) == ("2025-03-03", "2025-03-04")

    # Reloading those days by hand does not delete them either: it names the days and the file.
    result = load(tmp_path, exports, "2025-03-03", "2025-03-04", raise_on_error=False)
    assert "2 day(s)" in error_of(result) and str(gone) in error_of(result)
    assert _per_day(tmp_path) == before


def test_two_versions_of_a_billing_period_without_a_manifest_count_once(tmp_path):
    """A folder per delivery, both kept: the newer version (most line items unchanged, one day
    restated) counts; the older one is recorded as superseded, not summed."""
    exports = tmp_path / "exports"
    bill = demo.generate(*MARCH)
    old = write_export(exports / "v1" / "march.csv", *MARCH, frame=bill.copy())
    restated = bill.copy()
    day2 = restated.ChargePeriodStart.astype(str).str.startswith("2025-03-02") & (restated.ChargeCategory == "Usage")
    restated.loc[day2, ["BilledCost", "EffectiveCost"]] *= 1.5
    new = write_export(exports / "v2" / "march.csv", *MARCH, frame=restated)
    os.utime(old, (1_700_000_000, 1_700_000_000))  # v1 was delivered first
    first = load(tmp_path, exports, "2025-03-01", "2025-03-05")
    changed = first.asset_materializations_for_node("raw_billing")[0].metadata["new_or_changed_files"].value
    assert sorted(changed) == sorted([str(old), str(new)])
    again = load(tmp_path, exports, "2025-03-01", "2025-03-05")  # nothing changed: nothing read again
    assert again.asset_materializations_for_node("raw_billing")[0].metadata["new_or_changed_files"].value == []

    assert query(tmp_path, "SELECT count(*) FROM raw_billing")[0][0] == len(bill)
    assert sum(_per_day(tmp_path).values()) == pytest.approx(restated.EffectiveCost.sum(), abs=0.01)
    ledger = dict(query(tmp_path, "SELECT file, status FROM billing_deliveries"))
    assert ledger == {str(new): "counted", str(old): "superseded"}


def _manifest(root: Path, execution: str, files: list[Path], mtime: int) -> Path:
    """An AWS Data Exports manifest for March 2025, listing ``files`` as S3 URIs."""
    path = root / "metadata" / "BILLING_PERIOD=2025-03" / execution / "focus-export-Manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    uris = [f"s3://billing-bucket/exports/focus-export/{f.relative_to(root).as_posix()}" for f in files]
    path.write_text(json.dumps({"executionId": execution, "dataFiles": uris, "columns": [],
                                "billingPeriod": {"start": "2025-03-01T00:00:00.000Z", "end": "2025-04-01T00:00:00.000Z"}}))
    os.utime(path, (mtime, mtime))
    return path


def test_the_latest_manifest_delivery_counts_and_may_remove_a_day(tmp_path):
    """AWS Data Exports with "create new report": every execution keeps its own folder. The newest
    complete execution counts; the earlier one is superseded; a file no manifest lists is left
    out; and a day the newest delivery no longer holds is really removed (the manifest is the
    evidence)."""
    root = tmp_path / "exports" / "focus-export"
    data = root / "data" / "BILLING_PERIOD=2025-03"
    bill = demo.generate(*MARCH)
    first = write_export(data / "exec-1" / "focus-export-00001.csv.gz", *MARCH, frame=bill.copy())
    _manifest(root, "exec-1", [first], 1_700_000_000)
    assert load(tmp_path, root.parent, "2025-03-01", "2025-03-05").success
    assert sum(_per_day(tmp_path).values()) == pytest.approx(bill.EffectiveCost.sum(), abs=0.01)

    restated = bill[~bill.ChargePeriodStart.astype(str).str.startswith("2025-03-03")].copy()
    restated.loc[:, ["BilledCost", "EffectiveCost"]] *= 1.1
    second = write_export(data / "exec-2" / "focus-export-00001.csv.gz", *MARCH, frame=restated)
    write_export(data / "exec-3-in-flight" / "focus-export-00001.csv.gz", *MARCH, frame=bill.copy())
    _manifest(root, "exec-2", [second], 1_700_000_100)
    assert load(tmp_path, root.parent, "2025-03-01", "2025-03-05").success

    per_day = _per_day(tmp_path)
    assert "2025-03-03" not in per_day
    assert sum(per_day.values()) == pytest.approx(restated.EffectiveCost.sum(), abs=0.01)
    ledger = {Path(f).parent.name: (status, execution) for f, status, execution in
              query(tmp_path, "SELECT file, status, execution_id FROM billing_deliveries")}
    assert ledger == {"exec-1": ("superseded", "exec-1"), "exec-2": ("counted", "exec-2"),
                      "exec-3-in-flight": ("unlisted", None)}


def test_wide_quantities_load_exactly_and_a_cost_out_of_range_says_so(tmp_path):
    exports = tmp_path / "exports"
    write_export(exports / "bytes.csv", date(2025, 3, 1), date(2025, 3, 2), ConsumedQuantity=(1, "50000000000000"))
    assert load(tmp_path, exports, "2025-03-01").success
    assert query(tmp_path, "SELECT max(ConsumedQuantity)::VARCHAR FROM raw_billing")[0][0].startswith("50000000000000.")

    write_export(exports / "bytes.csv", date(2025, 3, 1), date(2025, 3, 2), BilledCost=(1, "12000000000"))
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    assert "column BilledCost: 1 row(s) out of range for DECIMAL(18, 8)" in message


def test_one_bad_month_is_rejected_and_named_while_the_other_eleven_load(tmp_path):
    exports = tmp_path / "exports"
    months = [date(2025, m, 1) for m in range(1, 13)]
    for first, nxt in zip(months, [*months[1:], date(2026, 1, 1)]):
        bad = {"EffectiveCost": (2, "n/a")} if first.month == 5 else {}
        # One day a month keeps the test quick; the month is still the unit.
        write_export(exports / f"BILLING_PERIOD={first:%Y-%m}" / "export.csv", first, first.replace(day=2), **bad)
    result = load(tmp_path, exports, "2025-01-01", "2025-12-31", raise_on_error=False)
    assert not result.success
    message = error_of(result)
    assert "billing period 2025-05 rejected, nothing of it written" in message
    assert "BILLING_PERIOD=2025-05/export.csv: column EffectiveCost: 2 row(s) not a number" in message
    loaded = {d[:7] for d in _per_day(tmp_path)}
    assert loaded == {f"2025-{m:02d}" for m in range(1, 13) if m != 5}


def test_a_bad_quantity_is_loaded_as_null_and_the_check_warns(tmp_path):
    """A quantity that does not parse never hides a day's cost: the row loads with the quantity
    NULL, the row is kept in the quarantine, and the fields_parse check fails as a warning."""
    from finops_pipeline.defs.ingest.checks import fields_parse
    from finops_pipeline.warehouse.resource import WarehouseResource

    exports = tmp_path / "exports"
    export = write_export(exports / "day.csv", date(2025, 3, 1), date(2025, 3, 2), ConsumedQuantity=(2, "lots"))
    assert load(tmp_path, exports, "2025-03-01").success
    expected = demo.generate(date(2025, 3, 1), date(2025, 3, 2))
    rows, cost = query(tmp_path, "SELECT count(*), sum(EffectiveCost) FROM raw_billing")[0]
    assert rows == len(expected) and float(cost) == pytest.approx(expected.EffectiveCost.sum(), abs=0.01)
    assert query(tmp_path, "SELECT count(*) FROM raw_billing WHERE ConsumedQuantity IS NULL")[0][0] >= 2
    assert query(tmp_path, "SELECT outcome, column_name, count(*) FROM raw_billing_quarantine GROUP BY ALL") == [
        ("loaded_as_null", "ConsumedQuantity", 2)]
    result = fields_parse(WarehouseResource(database=str(tmp_path / "finops.duckdb")))
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert result.metadata["by_file_and_column"].value == [
        {"file": str(export), "column": "ConsumedQuantity", "reason": "not a number", "line_items": 2}]

    # Fixed and reloaded: the quarantine entries go, and the check passes.
    write_export(export, date(2025, 3, 1), date(2025, 3, 2))
    assert load(tmp_path, exports, "2025-03-01").success
    assert fields_parse(WarehouseResource(database=str(tmp_path / "finops.duckdb"))).passed


def test_a_truncated_csv_says_where_parsing_stopped(tmp_path):
    exports = tmp_path / "exports"
    export = write_export(exports / "day.csv", date(2025, 3, 1), date(2025, 3, 2))
    data = export.read_bytes()
    export.write_bytes(data[: len(data) // 2])
    message = error_of(load(tmp_path, exports, "2025-03-01", raise_on_error=False))
    assert f"{export}: truncated or malformed CSV, parsing stopped: CSV Error on Line:" in message
    assert "missing mandatory" not in message
