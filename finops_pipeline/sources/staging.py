"""Staging line items as the temp view ``_incoming``: FOCUS exports as the clouds deliver them
(CSV, CSV.gz and Parquet, one or many files, read by DuckDB directly, never through pandas), and
sources that produce a DataFrame (the demo bill, Cost Explorer).

CSV is scanned with every column as text and cast to the declared FOCUS type with TRY_CAST,
keeping the text next to it, so the validator can count the rows that did not parse; Parquet
columns that already have their type are taken as they are. Version differences are mapped in one place, ``RENAMES``. Provider ``x_`` columns are
kept, packed as JSON in ``x_ProviderColumns``.
"""

from __future__ import annotations

import csv
import glob
import gzip
from collections import Counter
from datetime import date
from itertools import takewhile
from pathlib import Path

import duckdb
import pandas as pd

from finops_pipeline.errors import BillingDataError
from finops_pipeline.grain import DAILY
from finops_pipeline.sources import deliveries, ledger
from finops_pipeline.sources.base import ExportFiles
from finops_pipeline.sources.deliveries import FINGERPRINT_VERSION, SKETCH_SIZE, FilePeriod, is_manifest, read_manifest
from finops_pipeline.sources.focus import FOCUS_COLUMNS, NUMERIC_COLUMNS as _NUMERIC, REQUIRED_COLUMNS
from finops_pipeline.sources.validation import (
    BILLING_MONTH,
    Loaded,
    RuleViolation,
    check_written,
    clear_quarantine,
    load_staged,
    outside_months,
    write_staged,
)
from finops_pipeline.warehouse import register, unordered, utc_bounds

# FOCUS 1.3 renamed ProviderName to ServiceProviderName (and added HostProviderName); 1.0 and 1.2
# files carry ProviderName. Map newer names onto the 1.2 column the pipeline stores.
RENAMES = {"ServiceProviderName": "ProviderName"}

EXTENSIONS = (".csv", ".csv.gz", ".parquet")
# Columns the readers add: the file a row came from and its row number within it (Parquet).
_LINEAGE = ("x_SourceFile", "file_row_number")


def _iso_timestamp(text: str) -> str:
    """FOCUS timestamps are ISO 8601. DuckDB's cast alone is too lenient (it reads 4/1/25 as the
    year 4): require the YYYY-MM-DD dashes first, which costs far less than a regex."""
    t = f"trim({text})"
    return f"CASE WHEN substring({t}, 5, 1) = '-' AND substring({t}, 8, 1) = '-' THEN TRY_CAST({t} AS TIMESTAMPTZ) END"


def discover(path: str) -> list[Path]:
    """The export files under a folder (recursively) or matching a glob, in a stable order."""
    root = Path(path)
    if root.is_dir():
        candidates = [p for p in root.rglob("*") if p.is_file()]
    else:
        candidates = [Path(p) for p in glob.glob(path, recursive=True)]
    return sorted(p for p in candidates if p.name.lower().endswith(EXTENSIONS))


def discover_manifests(path: str) -> list[Path]:
    """The delivery manifests beside the export files: under the folder, or under the glob's
    fixed leading folders (a glob for data files does not match the manifests)."""
    root = Path(path)
    if not root.is_dir():
        root = Path(*takewhile(lambda part: not glob.has_magic(part), root.parts))
    return sorted(p for p in root.rglob("*") if p.is_file() and is_manifest(p)) if root.is_dir() else []


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _files(paths: list[Path]) -> str:
    return "[" + ", ".join(_literal(p) for p in paths) + "]"


def _is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


def _reader(paths: list[Path], columns: list[str] | None = None) -> str:
    """The DuckDB table function reading ``paths`` (files of one kind and header) in one scan,
    with each row's file as ``x_SourceFile``. For CSV, every column is text, except that given
    ``columns`` (the files' header) the FOCUS cost columns are read as DECIMAL: the reader then
    parses them itself, and fails on the first value that is not a number. Folder names such as
    ``day=2025-01-01`` are not read as columns: a file's rows are what it holds."""
    common = f"{_files(paths)}, filename = 'x_SourceFile', hive_partitioning = false"
    if _is_parquet(paths[0]):
        return f"read_parquet({common}, file_row_number = true)"
    if columns is None:
        # Every column as text: identifiers keep their leading zeros, and nothing is silently coerced.
        return f"read_csv({common}, header = true, all_varchar = true, compression = 'auto')"
    types = ", ".join(
        f"{_literal(c)}: '{FOCUS_COLUMNS[RENAMES.get(c, c)] if RENAMES.get(c, c) in _NUMERIC else 'VARCHAR'}'"
        for c in columns
    )
    return f"read_csv({common}, header = true, types = {{{types}}}, compression = 'auto')"


def _by_schema(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> tuple[dict[tuple, list[Path]], dict[Path, str]]:
    """``paths`` grouped by kind (Parquet or CSV) and columns with their types, so that each
    group is read in one scan (one scan of 90 files takes half the time of 90 scans); and the
    files that cannot be read, with why."""
    groups: dict[tuple, list[Path]] = {}
    unreadable: dict[Path, str] = {}
    for path in paths:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {_reader([path])}").fetchall()
        except duckdb.Error as exc:
            unreadable[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            continue
        columns = tuple((c, t) for c, t, *_ in described if c not in _LINEAGE)
        groups.setdefault((_is_parquet(path), columns), []).append(path)
    return groups, unreadable


def _named(paths: list[Path]) -> str:
    """Files for a message: all of a few, the first of many."""
    names = ", ".join(str(p) for p in paths[:3])
    return names if len(paths) <= 3 else f"{names} and {len(paths) - 3} more file(s)"


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle), [])


def _raise_if_malformed(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """DuckDB's dialect sniffer gives up on a CSV cut short (a row ends mid-field) and reads it as
    one column, which would look like missing columns. If the header has them, read the file
    as the header says and report where parsing stops."""
    try:
        header = _csv_header(path)
    except (OSError, EOFError, UnicodeError) as exc:
        raise BillingDataError(f"{path}: cannot be read as CSV ({exc})") from None
    if not all(RENAMES.get(c, c) in header or c in header for c in REQUIRED_COLUMNS):
        return
    columns = ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in header)
    try:
        con.execute(f"""SELECT count(*) FROM read_csv({_literal(path)}, auto_detect = false, header = true, delim = ',',
                        quote = '"', escape = '"', compression = 'auto', columns = {{{columns}}})""").fetchone()
    except duckdb.Error as exc:
        lines = str(exc).splitlines()
        where = next((line.strip() for line in lines if "CSV Error on Line" in line), lines[0])
        where = where[where.find("CSV Error"):] if "CSV Error" in where else where
        expected = next((line.strip() for line in lines if line.startswith("Expected Number of Columns")), "")
        raise BillingDataError(
            f"{path}: truncated or malformed CSV, parsing stopped: {where}{f' ({expected})' if expected else ''}; "
            "nothing loaded from it (re-deliver or remove the file)") from None


def _select(con: duckdb.DuckDBPyConnection, paths: list[Path], source: str, strict: bool = False) -> str:
    """A SELECT of the line items of ``paths`` (files with one header, see ``_by_schema``) as the
    FOCUS columns plus lineage, in one scan.

    Lenient (the default; one file at a time): each column parsed with TRY_CAST next to its text
    in ``raw__<column>``, so the validator can name every row that does not parse. Strict: typed
    columns only, and the query fails on the first value that does not parse; CSV rows are not
    numbered (a window over the whole file costs a third of the load). The fast path of
    ``load_files``.
    """
    if not strict and len(paths) > 1:
        raise ValueError("a lenient select reads one file: its CSV rows are numbered by a window over the file")
    # Naive timestamps are UTC (FOCUS says so), not the host's zone: the loader and the
    # restatement sensor must put every row on the same day.
    con.execute("SET TimeZone = 'UTC'")
    reader = _reader(paths)
    try:
        types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
                 if row[0] not in _LINEAGE}
    except duckdb.Error as exc:
        raise BillingDataError(f"{_named(paths)}: cannot be read as FOCUS ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0]})") from exc
    columns = list(types)
    parquet = _is_parquet(paths[0])
    present = {RENAMES.get(c, c): c for c in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing and not parquet:
        for path in paths:
            _raise_if_malformed(con, path)
    if missing:
        rows = con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0]
        raise BillingDataError(f"{_named(paths)}: missing mandatory FOCUS column(s) {', '.join(missing)} "
                               f"({rows} rows, nothing loaded)")
    if strict and not parquet:
        reader = _reader(paths, columns)
        types |= {present[c]: FOCUS_COLUMNS[c] for c in _NUMERIC if c in present}
    parts = []
    for name, dtype in FOCUS_COLUMNS.items():
        if name not in present:
            parts.append(f"CAST(NULL AS {dtype}) AS {_quote(name)}")
            if not strict:
                parts.append(f"CAST(NULL AS VARCHAR) AS {_quote('raw__' + name)}")
            continue
        src = _quote(present[name])
        source_type = types[present[name]].replace(" ", "")
        if source_type == dtype.replace(" ", "") or (dtype == "TIMESTAMPTZ" and source_type.startswith("TIMESTAMP")):
            # Typed already (Parquet, or the strict CSV reader): nothing that can fail to parse.
            parts.append(f"CAST({src} AS {dtype}) AS {_quote(name)}")
        elif dtype == "TIMESTAMPTZ":
            iso = _iso_timestamp(f"CAST({src} AS VARCHAR)")
            if strict:
                iso = (f"CASE WHEN nullif(trim(CAST({src} AS VARCHAR)), '') IS NULL THEN NULL "
                       f"ELSE coalesce({iso}, error('not an ISO 8601 timestamp')) END")
            parts.append(f"{iso} AS {_quote(name)}")
        else:
            parts.append(f"{'CAST' if strict else 'TRY_CAST'}({src} AS {dtype}) AS {_quote(name)}")
        if not strict:
            parts.append(f"CAST({src} AS VARCHAR) AS {_quote('raw__' + name)}")
    extras = [c for c in columns if c.startswith("x_")]
    packed = ", ".join(f"{_quote(c)} := {_quote(c)}" for c in extras)
    parts.append(f"to_json(struct_pack({packed})) AS x_ProviderColumns" if extras else "CAST(NULL AS JSON) AS x_ProviderColumns")
    # Parquet numbers its rows for free; for CSV a window over the file is the only way, and costs.
    if parquet:
        row = "file_row_number + 1"
    else:
        row = "CAST(NULL AS BIGINT)" if strict else "row_number() OVER ()"
    parts += [f"'{source}' AS x_Source", "x_SourceFile", f"{row} AS x_SourceRow"]
    return f"SELECT {', '.join(parts)} FROM {reader}"


def stage_files(
    con: duckdb.DuckDBPyConnection, files: list[Path], start: date, end: date, source: str = "focus", strict: bool = False,
    origin: str = "FINOPS_FOCUS_PATH", exclude: dict[Path, set[date]] | None = None,
) -> None:
    """Create the temp view ``_incoming`` over the rows of ``files`` whose charge period starts in
    ``[start, end)``, plus every row whose start is missing or does not parse (the validator
    reports those), less each file's billing months in ``exclude`` (another file counts for
    them). ``strict``: see ``_select``; strictly, files with one header are read in one scan."""
    if not files:
        raise BillingDataError(f"{source} source: no .csv, .csv.gz or .parquet files found ({origin})")
    exclude = exclude or {}
    groups, unreadable = _by_schema(con, files)
    if unreadable:
        path, why = next(iter(unreadable.items()))
        raise BillingDataError(f"{path}: cannot be read as FOCUS ({why})")
    selects = []
    for group in groups.values():
        for paths in [group] if strict else [[f] for f in group]:
            select = f"({_select(con, paths, source, strict)})"
            kept = [f"(x_SourceFile <> {_literal(f)} OR {BILLING_MONTH} IS NULL OR "
                    f"{outside_months(BILLING_MONTH, exclude[f])})" for f in paths if exclude.get(f)]
            selects.append(f"(SELECT * FROM {select} WHERE {' AND '.join(kept)})" if kept else select)
    union = " UNION ALL BY NAME ".join(selects)
    # A view, not a table: validation and the insert stream from the files, so memory stays flat
    # however large the month is. Views cannot bind parameters; the bounds are dates formatted
    # here, never user text.
    lo, hi = utc_bounds(start, end)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _incoming AS
            SELECT * FROM ({union})
            WHERE ChargePeriodStart IS NULL
               OR (ChargePeriodStart >= TIMESTAMPTZ '{lo}' AND ChargePeriodStart < TIMESTAMPTZ '{hi}')"""
    )


def fingerprint(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> list[FilePeriod]:
    """Each file's line items per billing month: count, an order-free hash of their values as the
    file has them (not of its bytes: the same rows as CSV or CSV.gz, under any name, match), and
    a bottom-k sketch of the row hashes. Values are hashed as read, uncast, and files with the
    same columns are read in one query: this pass costs a fraction of the load."""
    con.execute("SET TimeZone = 'UTC'")
    groups, _ = _by_schema(con, paths)  # an unreadable file: the load names it and what is wrong
    parts = []
    for (parquet, columns), group in groups.items():
        types = dict(columns)
        present = {RENAMES.get(c, c): c for c in types}

        def timestamp(column: str) -> str:
            if column not in present:
                return "CAST(NULL AS TIMESTAMPTZ)"
            quoted = _quote(present[column])
            return quoted if types[present[column]].startswith("TIMESTAMP") else _iso_timestamp(f"CAST({quoted} AS VARCHAR)")

        reader = _reader(group)
        month = (f"date_trunc('month', timezone('UTC', coalesce({timestamp('ChargePeriodStart')}, "
                 f"{timestamp('BillingPeriodStart')})))::DATE")
        values = ", ".join(_quote(c) for c in types)
        rows = con.execute(
            f"""SELECT x_SourceFile, month, count(*), sum(h::HUGEINT)::VARCHAR, min(h, {SKETCH_SIZE})
                FROM (SELECT x_SourceFile, {month} AS month, hash({values}) AS h FROM {reader})
                WHERE month IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
        for filename, month, n, total, sketch in rows:
            path = Path(filename)
            parts.append(FilePeriod(path, month, n, f"{FINGERPRINT_VERSION}:{n}:{total}", tuple(sketch),
                                    ledger.modified_at(path), path.stat().st_size))
    return parts


def load_files(con: duckdb.DuckDBPyConnection, export: ExportFiles, source: str, start: date, end: date,
               allow_deletes: bool = False) -> Loaded:
    """Make the counted deliveries among ``export``'s files, for ``[start, end)``, ``source``'s
    rows of ``raw_billing``, all or nothing per billing month.

    The files are first sorted into deliveries (``deliveries.plan``: duplicates and earlier
    versions are left out, and recorded in ``billing_deliveries``). The common case, a clean
    export, then takes one pass: the files are read strictly straight into the table, and the
    value rules are checked on the rows just written, before the commit. Only when that fails (a
    value that does not parse, or a broken rule) is the transaction rolled back and the files read
    again, leniently, for the row-by-row report, the quarantine and the verdict per month.
    """
    files = list(export.paths)
    if not files:
        raise BillingDataError(f"{source} source: no .csv, .csv.gz or .parquet files found ({export.origin})")
    manifests = []
    for m in export.manifests:
        try:
            manifests.append(read_manifest(m))
        except ValueError as exc:
            raise BillingDataError(str(exc)) from None
    parts, changed = ledger.fingerprints(con, source, files, fingerprint)
    plan = deliveries.plan(parts, manifests)
    ledger.record(con, source, files, parts, plan)
    excluded = plan.excluded()
    months_of = {}
    for part in parts:
        months_of.setdefault(part.file, set()).add(part.period)
    # A file none of whose rows count is not read at all; one with no rows still is (its header is checked).
    read = [f for f in files if not months_of.get(f) or months_of[f] - excluded.get(f, set())]
    statuses = dict(Counter(d.status for d in plan.decisions))
    first, last = DAILY.period(start).replace(day=1), DAILY.period(end)
    skipped = [f"{d.file} ({d.period:%Y-%m}): {d.status}, {d.reason}" for d in plan.decisions
               if d.status != deliveries.COUNTED and first <= d.period < last]
    try:
        stage_files(con, read, start, end, source, strict=True, origin=export.origin, exclude=excluded)
        with unordered(con):  # rows read strictly carry their file (and Parquet row number)
            rows = write_staged(con, source, start, end, check=lambda: check_written(con, source, start, end),
                                allow_deletes=allow_deletes, complete_months=plan.complete_periods)
        loaded = Loaded(rows)
        clear_quarantine(con, start, end, source)
    except (duckdb.Error, RuleViolation):
        stage_files(con, read, start, end, source, origin=export.origin, exclude=excluded)
        loaded = load_staged(con, source, start, end, allow_deletes, plan.complete_periods)
    loaded.deliveries = statuses
    loaded.changed_files = [str(f) for f in changed]
    loaded.warnings = plan.warnings + skipped
    return loaded


def stage_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, source: str) -> None:
    """Stage FOCUS rows held in a DataFrame as the view ``_incoming``, like the file reader does
    (its ``x_`` columns packed as JSON in ``x_ProviderColumns``)."""
    # Each day is its own "file", its rows numbered within it: re-running one day gives the rows
    # the numbers a backfill gave them.
    day = pd.to_datetime(frame["ChargePeriodStart"], utc=True).dt.strftime("%Y-%m-%d")
    frame = frame.assign(x_SourceFile=f"{source}:" + day, x_SourceRow=frame.groupby(day).cumcount() + 1)
    register(con, "_frame_rows", frame)  # stays registered: the view below reads it
    typed = ", ".join(f'CAST("{c}" AS {t}) AS "{c}", CAST("{c}" AS VARCHAR) AS "raw__{c}"' for c, t in FOCUS_COLUMNS.items())
    extras = [c for c in frame.columns if c.startswith("x_") and c not in ("x_SourceFile", "x_SourceRow")]
    # A row whose x_ columns are all empty (a cloud row beside AI rows) has none, as a file's would.
    packed = (f"CASE WHEN {' AND '.join(f'{_quote(c)} IS NULL' for c in extras)} THEN CAST(NULL AS JSON) "
              f"ELSE to_json(struct_pack({', '.join(f'{_quote(c)} := {_quote(c)}' for c in extras)})) END" if extras
              else "CAST(NULL AS JSON)")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _incoming AS
            SELECT {typed}, '{source}' AS x_Source, x_SourceFile, x_SourceRow, {packed} AS x_ProviderColumns
            FROM _frame_rows"""
    )


def day_fingerprints(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Per charge day (UTC) of one export file: its row count and a hash of its rows' text, so a
    restated file reveals exactly which days changed."""
    rows = con.execute(
        f"""SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE)::VARCHAR AS day, count(*),
                   sum(hash(concat_ws('|', *COLUMNS('^raw__'))))
            FROM ({_select(con, [path], 'focus')}) WHERE ChargePeriodStart IS NOT NULL GROUP BY 1"""
    ).fetchall()
    return {day: f"{n}:{h}" for day, n, h in rows}


def changed_days(previous: dict[str, dict[str, str]], current: dict[str, dict[str, str]]) -> set[date]:
    """Days whose rows differ between two fingerprint sets ({file: {day: fingerprint}}): added,
    rewritten or removed within a file that is still there. A file that is gone changes nothing:
    an export that vanished (lifecycle expiry, an archive move, an unmounted share) is a gap in the
    data, not a provider's restatement."""
    days: set[str] = set()
    for file, new in current.items():
        old = previous.get(file, {})
        days |= {d for d in old.keys() | new.keys() if old.get(d) != new.get(d)}
    return {date.fromisoformat(d) for d in days}
