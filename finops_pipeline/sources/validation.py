"""Checks every staged batch of line items passes before it is written.

Sources stage their rows as the temp view ``_incoming``: each FOCUS column typed, next to its
original text in ``raw__<column>``, with ``x_SourceFile`` and ``x_SourceRow``. A batch with any
bad row fails whole: the bad rows go to ``raw_billing_quarantine`` (queryable), and the error names
each file, column, reason and row count.
"""

from __future__ import annotations

from datetime import date

import duckdb

from finops_pipeline.sources.focus import (
    CHARGE_CATEGORIES,
    FOCUS_COLUMNS,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMNS,
)
from finops_pipeline.errors import BillingDataError
from finops_pipeline.warehouse import replace_window, transaction, utc_bounds


class RuleViolation(Exception):
    """Rows just written break a rule: roll back and find them with the full validator."""


def _rules(relation: str = "_incoming", with_text: bool = True) -> list[tuple[str, str, str]]:
    """(column, reason, SQL predicate for a bad row of ``relation``).

    ``with_text``: rows carry their original text in ``raw__<column>``, which tells a value that
    did not parse from an empty one. Without it (rows read strictly, where anything that did not
    parse has failed the read already) a missing required value is simply NULL.
    """
    rules = []
    if with_text:
        kinds = [*((c, "a number") for c in NUMERIC_COLUMNS), *((c, "a timestamp") for c in TIMESTAMP_COLUMNS), ("Tags", "JSON")]
        for column, kind in kinds:
            rules.append((column, f"not {kind}",
                          f'"{column}" IS NULL AND "raw__{column}" IS NOT NULL AND trim("raw__{column}") <> \'\''))
    for column in REQUIRED_COLUMNS:
        empty = f'"{column}" IS NULL'
        if with_text:
            empty += f' AND ("raw__{column}" IS NULL OR trim("raw__{column}") = \'\')'
        rules.append((column, "empty", empty))
    categories = ", ".join(f"'{c}'" for c in CHARGE_CATEGORIES)
    rules += [
        ("ChargeCategory", f"not one of {', '.join(CHARGE_CATEGORIES)}", f"ChargeCategory NOT IN ({categories})"),
        ("ChargePeriodEnd", "not after ChargePeriodStart", "ChargePeriodEnd <= ChargePeriodStart"),
        ("BillingCurrency", "not an ISO 4217 code", "NOT regexp_full_match(BillingCurrency, '[A-Z]{3}')"),
        ("BillingCurrency", "mixed currencies in one billing account (costs would be summed across currencies)",
         f"""BillingAccountId IN (SELECT BillingAccountId FROM {relation} GROUP BY 1
                                  HAVING count(DISTINCT BillingCurrency) > 1)"""),
    ]
    return rules


def validate_staged(con: duckdb.DuckDBPyConnection, start: date, end: date) -> None:
    """Raise ``BillingDataError`` (after quarantining the bad rows) unless every row in
    ``_incoming`` is valid."""
    rules = _rules()
    # One pass over the rows (``_incoming`` may stream from large files): each row yields the
    # indexes of the rules it breaks, and only the bad rows are kept.
    hits = ", ".join(f"CASE WHEN {predicate} THEN {i} END" for i, (_, _, predicate) in enumerate(rules))
    names = ", ".join(f"({i}, '{column}', '{reason}')" for i, (column, reason, _) in enumerate(rules))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _rejected AS
            WITH bad AS (
                SELECT x_SourceFile AS file, x_SourceRow AS row_number, x_Source AS source,
                       list_filter([{hits}], lambda h: h IS NOT NULL) AS broken
                FROM _incoming
            ),
            rules(rule, column_name, reason) AS (VALUES {names})
            SELECT file, column_name, reason, row_number, source
            FROM (SELECT file, row_number, source, unnest(broken) AS rule FROM bad WHERE len(broken) > 0)
            JOIN rules USING (rule)"""
    )
    summary = con.execute(
        """SELECT file, column_name, reason, count(*) AS n FROM _rejected
           GROUP BY ALL ORDER BY file, column_name, reason"""
    ).fetchall()
    if not summary:
        return
    # Only now count everything: _incoming may stream from large files, and each read costs.
    total = con.execute("SELECT count(*) FROM _incoming").fetchone()[0]
    raw = ", ".join(f'"{c}" := "raw__{c}"' for c in FOCUS_COLUMNS)
    with transaction(con):
        # A re-run of the same window replaces its earlier quarantine entries instead of piling up.
        con.execute(
            "DELETE FROM raw_billing_quarantine WHERE partition_start = ? AND file IN (SELECT DISTINCT file FROM _rejected)",
            [start],
        )
        con.execute(
            f"""INSERT INTO raw_billing_quarantine
                SELECT now(), ?, ?, r.source, r.file, r.row_number, r.column_name, r.reason, to_json(struct_pack({raw}))
                FROM _rejected r JOIN _incoming i ON i.x_SourceFile = r.file AND i.x_SourceRow = r.row_number""",
            [start, end],
        )
    bad_rows = con.execute("SELECT count(DISTINCT (file, row_number)) FROM _rejected").fetchone()[0]
    details = "; ".join(f"{file}: column {column}: {n} row(s) {reason}" for file, column, reason, n in summary)
    raise BillingDataError(
        f"{bad_rows} of {total} rows for {start}..{end} rejected, nothing written "
        f"(see table raw_billing_quarantine): {details}"
    )


def write_staged(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date, check=None) -> int:
    """Make ``_incoming`` ``source``'s rows of ``raw_billing`` for ``[start, end)`` in one
    transaction (``check`` runs inside it, before the commit); returns the rows written."""
    in_window = "x_Source = ? AND ChargePeriodStart >= ?::TIMESTAMPTZ AND ChargePeriodStart < ?::TIMESTAMPTZ"
    params = [source, *utc_bounds(start, end)]
    replace_window(con, "raw_billing", "_incoming", in_window, params,
                   before_commit=None if check is None else lambda: check(con, source, start, end))
    return con.execute(f"SELECT count(*) FROM raw_billing WHERE {in_window}", params).fetchone()[0]


def check_written(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date) -> None:
    """Raise ``RuleViolation`` if any of ``source``'s rows for ``[start, end)`` in ``raw_billing``
    (in the open transaction, rows whose charge period start is missing too) breaks a value rule.
    One scan of the columns involved, however many rules."""
    # No CTE: the cross-row rule would make DuckDB materialize it, every column of every row.
    written = """x_Source = $1 AND (ChargePeriodStart IS NULL
                 OR (ChargePeriodStart >= $2::TIMESTAMPTZ AND ChargePeriodStart < $3::TIMESTAMPTZ))"""
    relation = f"(SELECT BillingAccountId, BillingCurrency FROM raw_billing WHERE {written})"
    predicates = " OR ".join(f"({predicate})" for _, _, predicate in _rules(relation, with_text=False))
    broken = con.execute(
        f"SELECT count(*) FROM raw_billing WHERE {written} AND ({predicates})", [source, *utc_bounds(start, end)]
    ).fetchone()[0]
    if broken:
        raise RuleViolation(f"{broken} rows break a rule")


def load_staged(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date) -> int:
    """Validate ``_incoming`` (staged leniently, with its text) and write it as ``source``'s rows of
    ``raw_billing`` for ``[start, end)``; returns the rows written."""
    validate_staged(con, start, end)
    return write_staged(con, source, start, end)
