"""The warehouse schema: numbered ``.sql`` files in ``schema/``, each applied once, in order.

``schema_migrations`` records what a database file has had. A file made by an earlier release
has its tables but no record: the first file creates only what is missing, so it opens with
every row in place, and the later files bring its columns up to date.
"""

from __future__ import annotations

from importlib import resources
from datetime import datetime, timezone

import duckdb

from finops_pipeline.warehouse.transactions import transaction

_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"""


def migration_files() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every file in ``schema/``, by version."""
    folder = resources.files("finops_pipeline.warehouse") / "schema"
    files = sorted((int(f.name.split("_", 1)[0]), f.name, f.read_text()) for f in folder.iterdir() if f.name.endswith(".sql"))
    versions = [v for v, _, _ in files]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"schema/: two files share a version number: {[name for _, name, _ in files]}")
    return files


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the schema files this database has not had, each in its own transaction; returns
    their names."""
    con.execute(_LEDGER)
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, datetime.now(timezone.utc)])
        applied.append(name)
    return applied
