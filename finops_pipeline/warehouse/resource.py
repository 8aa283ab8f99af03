"""The warehouse resource: the one owner of the DuckDB file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster import InitResourceContext
from dagster_duckdb import DuckDBResource

from finops_pipeline.warehouse.migrations import migrate


def configure(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Every connection's session settings: days are UTC days whatever the host's zone, and a
    missing table never resolves to a Python variable of the same name (frames are registered
    explicitly)."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


class WarehouseResource(DuckDBResource):
    """The DuckDB file every stage reads and writes (dagster-duckdb's resource, which waits for
    the file's lock), with its schema brought up to date once per run."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            applied = migrate(con)
        if applied and context.log:
            context.log.info(f"Warehouse {self.database}: applied {', '.join(applied)}")

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A configured connection, closed even when the block raises (dagster-duckdb closes only
        on success, and a failed step would otherwise keep the file's lock)."""
        with self.get_connection() as con:
            try:
                yield configure(con)
            finally:
                con.close()
