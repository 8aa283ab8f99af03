"""The ledger of deliveries (``billing_deliveries``): every export file a source has seen, per
billing period, with its fingerprint and whether its rows count. It answers "where does this
day's cost come from" (with ``raw_billing.x_SourceFile``) and spares re-reading unchanged files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from finops_pipeline.sources.deliveries import FINGERPRINT_VERSION, FilePeriod, Plan
from finops_pipeline.warehouse import transaction
from finops_pipeline.warehouse.sql_files import sql_file


def _sql(name: str) -> str:
    return sql_file("finops_pipeline.sources", name)


def modified_at(path: Path) -> datetime:
    """A file's modification time as the ledger keeps it (microseconds, UTC)."""
    return datetime.fromtimestamp(path.stat().st_mtime_ns // 1000 / 1e6, timezone.utc)


def fingerprints(con: duckdb.DuckDBPyConnection, source: str, files: list[Path],
                 compute: Callable[[duckdb.DuckDBPyConnection, list[Path]], list[FilePeriod]]
                 ) -> tuple[list[FilePeriod], list[Path]]:
    """Every file's line items per billing period: from the ledger while the file's size and
    modification time are what they were and its fingerprint is of the current version, else
    ``compute``d (one read of the new or changed files); and those new or changed files."""
    cached: dict[str, list[FilePeriod]] = {}
    for file, period, size, modified, n, fp, sketch in con.execute(_sql("cached_fingerprints"), [source]).fetchall():
        cached.setdefault(file, []).append(FilePeriod(Path(file), period, n, fp, tuple(sketch or ()), modified, size))
    parts, changed = [], []
    for f in files:
        size, modified = f.stat().st_size, modified_at(f)
        known = cached.get(str(f))
        current = f"{FINGERPRINT_VERSION}:"
        if known and all(p.size == size and p.modified == modified and p.fingerprint.startswith(current) for p in known):
            parts += [FilePeriod(f, p.period, p.line_items, p.fingerprint, p.sketch, p.modified, p.size) for p in known]
        else:
            changed.append(f)
    computed = compute(con, changed) if changed else []
    # The computed parts name their files as given, so they match ``files`` exactly.
    return parts + computed, changed


def record(con: duckdb.DuckDBPyConnection, source: str, files: list[Path], parts: list[FilePeriod], plan: Plan) -> None:
    """Write the plan's decisions for ``parts`` (of ``files``) into the ledger, in one
    transaction; billing periods a file no longer holds (an export emptied to its header) leave it."""
    decided = {(d.file, d.period): d for d in plan.decisions}
    now = datetime.now(timezone.utc)
    with transaction(con):
        for file in files:
            con.execute(_sql("forget_deliveries"), [source, str(file), [p.period for p in parts if p.file == file]])
        for p in parts:
            d = decided[(p.file, p.period)]
            con.execute(_sql("record_delivery"), [
                source, str(p.file), p.period, p.size, p.modified, p.line_items, p.fingerprint, list(p.sketch),
                str(d.manifest.path) if d.manifest else None, d.manifest.execution_id if d.manifest else None,
                d.status, d.reason, now,
            ])
