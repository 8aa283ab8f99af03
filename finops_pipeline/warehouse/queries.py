"""Queries on the loaded line items, the SQL in ``sql/``."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from finops_pipeline.grain import Period
from finops_pipeline.warehouse.sql_files import sql_file
from finops_pipeline.warehouse.transactions import utc_bounds


def sql(name: str) -> str:
    return sql_file("finops_pipeline.warehouse", name)


@dataclass(frozen=True)
class WindowSummary:
    files: int
    billed_cost_by_category: dict[str, float]


def drop_unconfigured_sources(con: duckdb.DuckDBPyConnection, sources: list[str], start: Period, end: Period) -> None:
    con.execute(sql("drop_unconfigured_sources"), [sources, *utc_bounds(start, end)])


def window_summary(con: duckdb.DuckDBPyConnection, start: Period, end: Period) -> WindowSummary:
    """What the window holds now, from the table just written (not from the sources again)."""
    bounds = utc_bounds(start, end)
    return WindowSummary(files=con.execute(sql("window_files"), bounds).fetchone()[0],
                         billed_cost_by_category=dict(con.execute(sql("billed_cost_by_category"), bounds).fetchall()))


def negative_usage(con: duckdb.DuckDBPyConnection, start: Period | None = None,
                   end: Period | None = None) -> list[tuple[str, int, float]]:
    """(file, line items, their effective cost) of usage that costs less than nothing, by file;
    in ``[start, end)`` when given."""
    bounds = utc_bounds(start, end) if start is not None else [None, None]
    return con.execute(sql("negative_usage"), bounds).fetchall()


def quarantined_fields(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """(file, column, reason, line items) loaded with that field NULL because it did not parse."""
    return con.execute(sql("quarantined_fields")).fetchall()


def counted_deliveries(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The export files whose rows count, and are loaded."""
    return [f for (f,) in con.execute(sql("counted_deliveries")).fetchall()]
