"""Which export files count for a billing month: manifests of AWS Data Exports and Azure exports,
and, without one, the rows' fingerprints. Pure decisions, no files read but the manifests."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from finops_pipeline.sources.deliveries import (
    COUNTED,
    DUPLICATE,
    SUPERSEDED,
    UNLISTED,
    FilePeriod,
    plan,
    read_manifest,
)

MARCH = date(2025, 3, 1)


def _hash(line_item: int) -> int:
    """What DuckDB's hash of a row is: a uniform 64-bit number, equal for equal rows."""
    return int(hashlib.sha256(str(line_item).encode()).hexdigest()[:16], 16)


def part(path: Path, line_items: range, modified: int) -> FilePeriod:
    hashes = sorted(_hash(i) for i in line_items)
    return FilePeriod(path, MARCH, len(hashes), f"{len(hashes)}:{sum(hashes)}", tuple(hashes[:64]),
                      datetime.fromtimestamp(modified, timezone.utc), 100)


def statuses(result) -> dict[str, str]:
    return {d.file.name: d.status for d in result.decisions}


def test_parts_of_one_delivery_all_count_and_versions_do_not_add_up(tmp_path):
    a, b = part(tmp_path / "part-1.csv", range(0, 1000), 10), part(tmp_path / "part-2.csv", range(1000, 2000), 10)
    assert statuses(plan([a, b], [])) == {"part-1.csv": COUNTED, "part-2.csv": COUNTED}

    # A newer delivery of the month: 90 % of its line items unchanged, the rest restated.
    v2 = part(tmp_path / "v2.csv", range(100, 1100), 20)
    result = plan([part(tmp_path / "v1.csv", range(0, 1000), 10), v2], [])
    assert statuses(result) == {"v1.csv": SUPERSEDED, "v2.csv": COUNTED}
    assert result.excluded() == {tmp_path / "v1.csv": {MARCH}}
    # A month-to-date file grows: yesterday's version is contained in today's.
    grown = plan([part(tmp_path / "mtd-1.csv", range(0, 500), 10), part(tmp_path / "mtd-2.csv", range(0, 1000), 20)], [])
    assert statuses(grown) == {"mtd-1.csv": SUPERSEDED, "mtd-2.csv": COUNTED}


def test_the_same_rows_twice_are_a_duplicate_whatever_the_order_of_arrival(tmp_path):
    same = [part(tmp_path / "x.csv", range(0, 300), 10), part(tmp_path / "x.csv.gz", range(0, 300), 30),
            part(tmp_path / "copy" / "x.csv", range(0, 300), 20)]
    assert sorted(d.status for d in plan(same, []).decisions) == [COUNTED, DUPLICATE, DUPLICATE]


def _write(path: Path, doc: dict, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    os.utime(path, (mtime, mtime))
    return path


def test_an_azure_export_run_manifest_picks_its_blobs(tmp_path):
    root = tmp_path / "costs" / "focus-daily"
    old_run, new_run = root / "20250301-20250331" / "run-a", root / "20250301-20250331" / "run-b"
    files = [old_run / "part_0_0001.csv.gz", new_run / "part_0_0001.csv.gz", new_run / "part_1_0001.csv.gz"]
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"")
    manifests = [
        read_manifest(_write(old_run / "manifest.json", {
            "runInfo": {"runId": "run-a", "startDate": "2025-03-01T00:00:00"},
            "blobs": [{"blobName": "focus-daily/20250301-20250331/run-a/part_0_0001.csv.gz", "byteCount": 1}]}, 100)),
        read_manifest(_write(new_run / "manifest.json", {
            "runInfo": {"runId": "run-b", "startDate": "2025-03-01T00:00:00"},
            "blobs": [{"blobName": f"focus-daily/20250301-20250331/run-b/{f.name}", "byteCount": 1}
                      for f in files[1:]]}, 200)),
    ]
    assert [(m.execution_id, m.period) for m in manifests] == [("run-a", MARCH), ("run-b", MARCH)]
    parts = [part(f, range(i * 1000, i * 1000 + 10), 10 + i) for i, f in enumerate(files)]
    result = plan(parts, manifests)
    assert [d.status for d in result.decisions] == [SUPERSEDED, COUNTED, COUNTED]
    assert result.complete_periods == {MARCH}


def test_an_incomplete_newest_delivery_falls_back_to_the_last_complete_one(tmp_path):
    root = tmp_path / "export"
    data = root / "data" / "BILLING_PERIOD=2025-03"
    first = data / "exec-1" / "export-00001.parquet"
    first.parent.mkdir(parents=True)
    first.write_bytes(b"")
    uri = "s3://bucket/export/data/BILLING_PERIOD=2025-03"
    manifests = [
        read_manifest(_write(root / "metadata" / "BILLING_PERIOD=2025-03" / "exec-1" / "export-Manifest.json",
                             {"executionId": "exec-1", "dataFiles": [f"{uri}/exec-1/export-00001.parquet"]}, 100)),
        read_manifest(_write(root / "metadata" / "BILLING_PERIOD=2025-03" / "exec-2" / "export-Manifest.json",
                             {"executionId": "exec-2", "dataFiles": [f"{uri}/exec-2/export-00001.parquet"]}, 200)),
    ]
    result = plan([part(first, range(0, 10), 10)], manifests)
    assert statuses(result) == {"export-00001.parquet": COUNTED}
    assert "delivery exec-2" in result.warnings[0] and "1 of its 1 file(s) are missing" in result.warnings[0]


def test_a_json_file_that_is_no_manifest_is_named(tmp_path):
    with pytest.raises(ValueError, match="neither an AWS Data Exports nor an Azure export manifest"):
        read_manifest(_write(tmp_path / "manifest.json", {"hello": 1}, 100))
    assert UNLISTED == "unlisted"
