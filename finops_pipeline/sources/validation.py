"""Checks every staged batch of line items passes before it is written, and the one write.

Sources stage their rows as the temp view ``_incoming``: each FOCUS column typed, next to its
original text in ``raw__<column>``, with ``x_SourceFile`` and ``x_SourceRow``.

A billing period is the unit of all-or-nothing. A bad value in a column that carries money or
places it (a cost, the charge period, the charge category, the currency, a mandatory column)
rejects the row's whole billing period: nothing of it is written, the period keeps what it held,
and the error names the period, file, column, reason and row count. A bad value elsewhere (a
quantity, a billing-period timestamp, the tags) never hides a day's cost: the row is loaded with
that field NULL. Every bad row is kept in ``raw_billing_quarantine`` with what became of it.

A write never deletes without evidence: a day of the window that held a source's rows and would
hold none afterwards stops the write (``UnevidencedDelete``), unless the run allows deletes or a
manifest vouches that the day's billing period is complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import duckdb

from finops_pipeline.errors import BillingDataError
from finops_pipeline.grain import contiguous_ranges
from finops_pipeline.sources.focus import (
    CHARGE_CATEGORIES,
    COST_COLUMNS,
    FOCUS_COLUMNS,
    NUMERIC_COLUMNS,
    REQUIRED_COLUMNS,
    TIMESTAMP_COLUMNS,
)
from finops_pipeline.warehouse import replace_window, transaction, utc_bounds

# The billing month a row belongs to: where its charge period starts (UTC), else its billing period.
BILLING_MONTH = "date_trunc('month', timezone('UTC', coalesce(ChargePeriodStart, BillingPeriodStart)))::DATE"
# Timestamps whose value places money in time; the billing-period ones only label it.
PLACING_TIMESTAMPS = ("ChargePeriodStart", "ChargePeriodEnd")


def outside_months(expr: str, months: Iterable[date]) -> str:
    """SQL: ``expr`` is not one of ``months`` (dates formatted here, never user text)."""
    listed = ", ".join(f"DATE '{m}'" for m in months)
    return f"{expr} NOT IN ({listed})" if listed else "TRUE"


class RuleViolation(Exception):
    """Rows just written break a rule: roll back and find them with the full validator."""


class UnevidencedDelete(BillingDataError):
    """A write would empty days that held rows, with nothing to show they were really removed."""


@dataclass(frozen=True)
class Rule:
    column: str
    reason: str
    predicate: str  # SQL: true for a bad row
    rejects_period: bool  # False: the row is loaded with the column NULL


@dataclass
class Verdict:
    """What validation found in ``_incoming``."""

    rejected: dict[date, str] = field(default_factory=dict)  # billing month → what was wrong
    nulled: int = 0  # rows loaded with a bad non-cost field set to NULL
    unplaced: int = 0  # rows with no charge or billing period at all: quarantined, in no window
    broken: list[str] = field(default_factory=list)  # files none of whose rows has a charge period

    def reject(self, month: date, details: str) -> None:
        self.rejected[month] = f"{self.rejected[month]}; {details}" if month in self.rejected else details

    def errors(self, source: str) -> list[str]:
        return [*(f"source {source}: billing period {month:%Y-%m} rejected, nothing of it written (it keeps what it "
                  f"held; see table raw_billing_quarantine): {details}" for month, details in sorted(self.rejected.items())),
                *(f"source {source}: nothing loaded from {details}: no row of the file can be placed on a day"
                  for details in self.broken)]


def _rules(relation: str = "_incoming", with_text: bool = True) -> list[Rule]:
    """The value rules for rows of ``relation``.

    ``with_text``: rows carry their original text in ``raw__<column>``, which tells a value that
    did not parse from an empty one. Without it (rows read strictly, where anything that did not
    parse has failed the read already) a missing required value is simply NULL.
    """
    rules = []
    if with_text:
        for column in NUMERIC_COLUMNS:
            failed = f'"{column}" IS NULL AND "raw__{column}" IS NOT NULL AND trim("raw__{column}") <> \'\''
            number = f'TRY_CAST(trim("raw__{column}") AS DOUBLE) IS NOT NULL'
            critical = column in COST_COLUMNS
            rules.append(Rule(column, f"out of range for {FOCUS_COLUMNS[column]}", f"{failed} AND {number}", critical))
            rules.append(Rule(column, "not a number", f"{failed} AND NOT ({number})", critical))
        for column in TIMESTAMP_COLUMNS:
            rules.append(Rule(column, "not an ISO 8601 timestamp",
                              f'"{column}" IS NULL AND "raw__{column}" IS NOT NULL AND trim("raw__{column}") <> \'\'',
                              column in PLACING_TIMESTAMPS))
        rules.append(Rule("Tags", "not JSON", '"Tags" IS NULL AND "raw__Tags" IS NOT NULL AND trim("raw__Tags") <> \'\'',
                          False))
    for column in REQUIRED_COLUMNS:
        empty = f'"{column}" IS NULL'
        if with_text:
            empty += f' AND ("raw__{column}" IS NULL OR trim("raw__{column}") = \'\')'
        rules.append(Rule(column, "empty", empty, True))
    categories = ", ".join(f"'{c}'" for c in CHARGE_CATEGORIES)
    rules += [
        Rule("ChargeCategory", f"not one of {', '.join(CHARGE_CATEGORIES)}", f"ChargeCategory NOT IN ({categories})", True),
        Rule("ChargePeriodEnd", "not after ChargePeriodStart", "ChargePeriodEnd <= ChargePeriodStart", True),
        Rule("BillingCurrency", "not an ISO 4217 code", "NOT regexp_full_match(BillingCurrency, '[A-Z]{3}')", True),
        Rule("BillingCurrency", "mixed currencies in one billing account (costs would be summed across currencies)",
             f"""BillingAccountId IN (SELECT BillingAccountId FROM {relation} GROUP BY 1
                                      HAVING count(DISTINCT BillingCurrency) > 1)""", True),
    ]
    return rules


def validate_staged(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date) -> Verdict:
    """Find the bad rows of ``_incoming``, quarantine them, and say which billing months they
    reject. Leaves the temp view ``_accepted``: the rows to write."""
    rules = _rules()
    # One pass over the rows (``_incoming`` may stream from large files): each row yields the
    # indexes of the rules it breaks, and only the bad rows are kept.
    hits = ", ".join(f"CASE WHEN {r.predicate} THEN {i} END" for i, r in enumerate(rules))
    names = ", ".join(f"({i}, '{r.column}', '{r.reason}', {r.rejects_period})" for i, r in enumerate(rules))
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _rejected AS
            WITH bad AS (
                SELECT x_SourceFile AS file, x_SourceRow AS row_number, x_Source AS source, {BILLING_MONTH} AS month,
                       list_filter([{hits}], lambda h: h IS NOT NULL) AS broken
                FROM _incoming
            ),
            rules(rule, column_name, reason, rejects_period) AS (VALUES {names})
            SELECT file, column_name, reason, rejects_period, row_number, source, month
            FROM (SELECT file, row_number, source, month, unnest(broken) AS rule FROM bad WHERE len(broken) > 0)
            JOIN rules USING (rule)"""
    )
    lo, hi = utc_bounds(start, end)
    # Months the window overlaps whose rows break a rule on money; rows placed nowhere reject nothing.
    summary = con.execute(
        f"""SELECT month, file, column_name, reason, count(*) FROM _rejected
            WHERE rejects_period AND month IS NOT NULL
              AND month < TIMESTAMPTZ '{hi}' AND month + INTERVAL 1 MONTH > TIMESTAMPTZ '{lo}'
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    verdict = Verdict()
    for month, file, column, reason, n in summary:
        verdict.reject(month, f"{file}: column {column}: {n} row(s) {reason}")
    # A row with no charge or billing period belongs to no month: it puts in question the months
    # its file delivers in this window, or, if the file places no row at all, the file.
    unplaced = con.execute(
        """SELECT file, column_name, reason, count(*) FROM _rejected WHERE month IS NULL AND rejects_period
           GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    by_file: dict[str, list[str]] = {}
    for file, column, reason, n in unplaced:
        by_file.setdefault(file, []).append(f"column {column}: {n} row(s) {reason}")
    for file, problems in by_file.items():
        months = [m for (m,) in con.execute(
            f"SELECT DISTINCT {BILLING_MONTH} FROM _incoming WHERE x_SourceFile = ? AND ChargePeriodStart IS NOT NULL",
            [file]).fetchall()]
        text = f"{file}: rows with no usable charge period ({'; '.join(problems)})"
        for month in months:
            verdict.reject(month, text)
        if not months:
            verdict.broken.append(text)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _accepted AS SELECT * FROM _incoming
            WHERE ChargePeriodStart IS NOT NULL AND {outside_months(BILLING_MONTH, verdict.rejected)}"""
    )
    if not con.execute("SELECT 1 FROM _rejected LIMIT 1").fetchone():
        clear_quarantine(con, start, end, source)
        return verdict
    verdict.nulled = con.execute(
        f"""SELECT count(DISTINCT (file, row_number)) FROM _rejected r
            WHERE month IS NOT NULL AND {outside_months("month", verdict.rejected)} AND NOT EXISTS (
                SELECT 1 FROM _rejected c WHERE c.rejects_period AND c.file = r.file AND c.row_number = r.row_number)"""
    ).fetchone()[0]
    verdict.unplaced = con.execute("SELECT count(DISTINCT (file, row_number)) FROM _rejected WHERE month IS NULL").fetchone()[0]
    raw = ", ".join(f'"{c}" := "raw__{c}"' for c in FOCUS_COLUMNS)
    with transaction(con):
        clear_quarantine(con, start, end, source)
        con.execute(
            f"""INSERT INTO raw_billing_quarantine BY NAME
                SELECT now() AS quarantined_at, ?::TIMESTAMPTZ AS partition_start, ?::TIMESTAMPTZ AS partition_end,
                       r.source, r.file, r.row_number, r.column_name, r.reason, to_json(struct_pack({raw})) AS row_values,
                       CASE WHEN r.month IS NULL OR NOT ({outside_months("r.month", verdict.rejected)}) OR bool_or(r.rejects_period) OVER row_rules
                            THEN 'rejected' ELSE 'loaded_as_null' END AS outcome,
                       r.month AS billing_period
                FROM _rejected r JOIN _incoming i ON i.x_SourceFile = r.file AND i.x_SourceRow = r.row_number
                WINDOW row_rules AS (PARTITION BY r.file, r.row_number)""",
            [*utc_bounds(start, end)],
        )
    return verdict


def clear_quarantine(con: duckdb.DuckDBPyConnection, start: date, end: date, source: str) -> None:
    """A reload of a window replaces the quarantine entries of loads within it: they describe
    files as they were, and pile up otherwise."""
    con.execute("DELETE FROM raw_billing_quarantine WHERE source = ? AND partition_start >= ?::TIMESTAMPTZ "
                "AND partition_end <= ?::TIMESTAMPTZ", [source, *utc_bounds(start, end)])


_DAY = "CAST(timezone('UTC', ChargePeriodStart) AS DATE)"


def _days(con: duckdb.DuckDBPyConnection, where: str, params: list) -> dict[date, int]:
    """Per UTC charge day: the rows matching ``where`` in raw_billing. Grouped by the day's number
    since 1970 (integer arithmetic on the epoch), a fifth of the cost of a time-zone conversion
    per row: this runs twice on every load."""
    return dict(con.execute(
        f"""SELECT DATE '1970-01-01' + CAST(day AS INTEGER), n FROM (
                SELECT epoch_ms(ChargePeriodStart) // 86400000 AS day, count(*) AS n
                FROM raw_billing WHERE {where} GROUP BY 1)""", params).fetchall())


def write_staged(
    con: duckdb.DuckDBPyConnection, source: str, start: date, end: date, rows: str = "_incoming",
    check: Callable[[], None] | None = None, keep_months: Iterable[date] = (), allow_deletes: bool = False,
    complete_months: Iterable[date] = (),
) -> int:
    """Make ``rows`` ``source``'s rows of ``raw_billing`` for ``[start, end)``, except in
    ``keep_months`` (billing months that keep what they hold), in one transaction; ``check`` runs
    inside it, before the commit. Returns the rows written.

    Raises ``UnevidencedDelete`` (and writes nothing) if a day that held rows would hold none,
    unless ``allow_deletes`` or the day's billing month is in ``complete_months``."""
    in_window = (f"x_Source = ? AND ChargePeriodStart >= ?::TIMESTAMPTZ AND ChargePeriodStart < ?::TIMESTAMPTZ "
                 f"AND {outside_months(BILLING_MONTH, keep_months)}")
    params = [source, *utc_bounds(start, end)]
    before = _days(con, in_window, params)
    vouched = set(complete_months)
    emptied: list[date] = []

    def before_commit() -> None:
        if check is not None:
            check()
        if allow_deletes:
            return
        after = _days(con, in_window, params)
        emptied.extend(sorted(d for d in before if d not in after and d.replace(day=1) not in vouched))
        if emptied:
            raise RuleViolation("would empty days")  # rolls the write back; reported below

    try:
        replace_window(con, "raw_billing", rows, in_window, params, before_commit=before_commit)
    except RuleViolation:
        if not emptied:
            raise
        spans = ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in contiguous_ranges(emptied))
        # Rolled back: the emptied days' rows are there again, to name the files they came from.
        files = [f for (f,) in con.execute(
            f"SELECT DISTINCT x_SourceFile FROM raw_billing WHERE {in_window} AND {_DAY} IN "
            f"({', '.join('?' * len(emptied))}) ORDER BY 1", [*params, *emptied]).fetchall()]
        raise UnevidencedDelete(
            f"source {source}: {len(emptied)} day(s) that hold {sum(before[d] for d in emptied)} line item(s) would be "
            f"emptied ({spans}), but nothing shows the provider removed them: the files they came from "
            f"({', '.join(files[:5])}{' …' if len(files) > 5 else ''}) are gone or no longer cover these days. "
            "Nothing was written. Restore the export files, or, if the provider really removed these charges, "
            "re-run with the raw_billing config allow_deletes: true."
        ) from None
    return con.execute(f"SELECT count(*) FROM raw_billing WHERE {in_window}", params).fetchone()[0]


def check_written(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date) -> None:
    """Raise ``RuleViolation`` if any of ``source``'s rows for ``[start, end)`` in ``raw_billing``
    (in the open transaction, rows whose charge period start is missing too) breaks a value rule.
    One scan of the columns involved, however many rules."""
    # No CTE: the cross-row rule would make DuckDB materialize it, every column of every row.
    written = """x_Source = $1 AND (ChargePeriodStart IS NULL
                 OR (ChargePeriodStart >= $2::TIMESTAMPTZ AND ChargePeriodStart < $3::TIMESTAMPTZ))"""
    relation = f"(SELECT BillingAccountId, BillingCurrency FROM raw_billing WHERE {written})"
    predicates = " OR ".join(f"({r.predicate})" for r in _rules(relation, with_text=False))
    broken = con.execute(
        f"SELECT count(*) FROM raw_billing WHERE {written} AND ({predicates})", [source, *utc_bounds(start, end)]
    ).fetchone()[0]
    if broken:
        raise RuleViolation(f"{broken} rows break a rule")


@dataclass
class Loaded:
    """What one source's load did."""

    rows: int = 0
    verdict: Verdict = field(default_factory=Verdict)
    deliveries: dict[str, int] = field(default_factory=dict)  # files per status (counted, duplicate, …)
    changed_files: list[str] = field(default_factory=list)  # new or changed since the last load
    warnings: list[str] = field(default_factory=list)


def load_staged(con: duckdb.DuckDBPyConnection, source: str, start: date, end: date, allow_deletes: bool = False,
                complete_months: Iterable[date] = ()) -> Loaded:
    """Validate ``_incoming`` (staged leniently, with its text) and write its accepted billing
    months as ``source``'s rows of ``raw_billing`` for ``[start, end)``."""
    verdict = validate_staged(con, source, start, end)
    rows = write_staged(con, source, start, end, rows="_accepted", keep_months=verdict.rejected,
                        allow_deletes=allow_deletes, complete_months=complete_months)
    return Loaded(rows, verdict)
