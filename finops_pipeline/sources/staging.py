"""Staging line items as the temp view ``_incoming``: FOCUS exports as the clouds deliver them
(CSV, CSV.gz and Parquet, one or many files, read by DuckDB directly, never through pandas), and
sources that produce a DataFrame (the demo bill, Cost Explorer).

CSV is scanned with every column as text and cast to the declared FOCUS type with TRY_CAST,
keeping the text next to it, so the validator can count the rows that did not parse; Parquet
columns that already have their type are taken as they are. Version differences are mapped in one place, ``RENAMES``. Provider ``x_`` columns are
kept, packed as JSON in ``x_ProviderColumns``.
"""

from __future__ import annotations

import glob
import hashlib
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from finops_pipeline.sources.focus import FOCUS_COLUMNS, NUMERIC_COLUMNS as _NUMERIC, REQUIRED_COLUMNS
from finops_pipeline.errors import BillingDataError
from finops_pipeline.sources.validation import RuleViolation, check_written, load_staged, write_staged
from finops_pipeline.warehouse import utc_bounds

# FOCUS 1.3 renamed ProviderName to ServiceProviderName (and added HostProviderName); 1.0 and 1.2
# files carry ProviderName. Map newer names onto the 1.2 column the pipeline stores.
RENAMES = {"ServiceProviderName": "ProviderName"}

EXTENSIONS = (".csv", ".csv.gz", ".parquet")


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


def _duplicates(files: list[Path]) -> list[list[Path]]:
    """Groups of files with identical content: the same export delivered twice would double-count.
    Only files of equal size are hashed."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for f in files:
        by_size[f.stat().st_size].append(f)
    groups = []
    for same_size in (g for g in by_size.values() if len(g) > 1):
        by_hash: dict[str, list[Path]] = defaultdict(list)
        for f in same_size:
            with f.open("rb") as handle:
                by_hash[hashlib.file_digest(handle, "sha256").hexdigest()].append(f)
        groups += [g for g in by_hash.values() if len(g) > 1]
    return groups


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _reader(path: Path, columns: list[str] | None = None) -> str:
    """The DuckDB table function reading ``path``. For CSV, every column is text, except that
    given ``columns`` (the file's header) the FOCUS cost columns are read as DECIMAL: the reader
    then parses them itself, and fails on the first value that is not a number."""
    literal = _literal(path)
    if path.name.lower().endswith(".parquet"):
        return f"read_parquet({literal}, file_row_number = true)"
    if columns is None:
        # Every column as text: identifiers keep their leading zeros, and nothing is silently coerced.
        return f"read_csv({literal}, header = true, all_varchar = true, compression = 'auto')"
    types = ", ".join(
        f"{_literal(c)}: '{FOCUS_COLUMNS[RENAMES.get(c, c)] if RENAMES.get(c, c) in _NUMERIC else 'VARCHAR'}'"
        for c in columns
    )
    return f"read_csv({literal}, header = true, types = {{{types}}}, compression = 'auto')"


def _file_select(con: duckdb.DuckDBPyConnection, path: Path, source: str, strict: bool = False) -> str:
    """A SELECT of ``path``'s line items as the FOCUS columns plus lineage.

    Lenient (the default): each column parsed with TRY_CAST next to its text in ``raw__<column>``,
    so the validator can name every row that does not parse. Strict: typed columns only, and the
    query fails on the first value that does not parse; CSV rows are not numbered (a window over
    the whole file costs a third of the load). The fast path of ``load_files``.
    """
    # Naive timestamps are UTC (FOCUS says so), not the host's zone: the loader and the
    # restatement sensor must put every row on the same day.
    con.execute("SET TimeZone = 'UTC'")
    reader = _reader(path)
    try:
        types = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        columns = list(types)
    except duckdb.Error as exc:
        raise BillingDataError(f"{path}: cannot be read as FOCUS ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    present = {RENAMES.get(c, c): c for c in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        rows = con.execute(f"SELECT count(*) FROM {reader}").fetchone()[0]
        raise BillingDataError(f"{path}: missing mandatory FOCUS column(s) {', '.join(missing)} ({rows} rows, nothing loaded)")
    if strict and "file_row_number" not in columns:
        reader = _reader(path, columns)
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
    if "file_row_number" in columns:
        row = "file_row_number + 1"
    else:
        row = "CAST(NULL AS BIGINT)" if strict else "row_number() OVER ()"
    parts += [f"'{source}' AS x_Source", f"{_literal(path)} AS x_SourceFile", f"{row} AS x_SourceRow"]
    return f"SELECT {', '.join(parts)} FROM {reader}"


def stage_files(
    con: duckdb.DuckDBPyConnection, files: list[Path], start: date, end: date, source: str = "focus", strict: bool = False,
    origin: str = "FINOPS_FOCUS_PATH",
) -> None:
    """Create the temp view ``_incoming`` over the rows of ``files`` whose charge period starts in
    ``[start, end)``, plus every row whose start is missing or does not parse (the validator
    reports those). ``strict``: see ``_file_select``."""
    if not files:
        raise BillingDataError(f"{source} source: no .csv, .csv.gz or .parquet files found ({origin})")
    for group in _duplicates(files):
        raise BillingDataError(
            f"{' and '.join(map(str, group))} have identical content: a duplicated delivery would double-count; "
            "remove one (nothing loaded)"
        )
    union = " UNION ALL BY NAME ".join(f"({_file_select(con, f, source, strict)})" for f in files)
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


def load_files(con: duckdb.DuckDBPyConnection, files: list[Path], source: str, start: date, end: date,
               origin: str = "FINOPS_FOCUS_PATH") -> int:
    """Make ``files``' line items for ``[start, end)`` ``source``'s rows of ``raw_billing``, all or
    nothing; returns the rows written.

    The common case, a clean export, takes one pass: the files are read strictly straight into
    the table, and the value rules are checked on the rows just written, before the commit. Only
    when that fails (a value that does not parse, or a broken rule) is the transaction rolled
    back and the files read again, leniently, for the row-by-row report and the quarantine.
    """
    try:
        stage_files(con, files, start, end, source, strict=True, origin=origin)
        return write_staged(con, source, start, end, check=check_written)
    except (duckdb.Error, RuleViolation):
        stage_files(con, files, start, end, source, origin=origin)
        return load_staged(con, source, start, end)


def stage_frame(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, source: str) -> None:
    """Stage FOCUS rows held in a DataFrame as the view ``_incoming``, like the file reader does."""
    # Each day is its own "file", its rows numbered within it: re-running one day gives the rows
    # the numbers a backfill gave them.
    day = pd.to_datetime(frame["ChargePeriodStart"], utc=True).dt.strftime("%Y-%m-%d")
    frame = frame.assign(x_SourceFile=f"{source}:" + day, x_SourceRow=frame.groupby(day).cumcount() + 1)
    con.register("_frame_rows", frame)  # stays registered: the view below reads it
    typed = ", ".join(f'CAST("{c}" AS {t}) AS "{c}", CAST("{c}" AS VARCHAR) AS "raw__{c}"' for c, t in FOCUS_COLUMNS.items())
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _incoming AS
            SELECT {typed}, '{source}' AS x_Source, x_SourceFile, x_SourceRow, CAST(NULL AS JSON) AS x_ProviderColumns
            FROM _frame_rows"""
    )


def day_fingerprints(con: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """Per charge day (UTC) of one export file: its row count and a hash of its rows' text, so a
    restated file reveals exactly which days changed."""
    rows = con.execute(
        f"""SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE)::VARCHAR AS day, count(*),
                   sum(hash(concat_ws('|', *COLUMNS('^raw__'))))
            FROM ({_file_select(con, path, 'focus')}) WHERE ChargePeriodStart IS NOT NULL GROUP BY 1"""
    ).fetchall()
    return {day: f"{n}:{h}" for day, n, h in rows}


def changed_days(previous: dict[str, dict[str, str]], current: dict[str, dict[str, str]]) -> set[date]:
    """Days whose rows differ between two fingerprint sets ({file: {day: fingerprint}}): added,
    rewritten or removed, in any file."""
    days: set[str] = set()
    for file in previous.keys() | current.keys():
        old, new = previous.get(file, {}), current.get(file, {})
        days |= {d for d in old.keys() | new.keys() if old.get(d) != new.get(d)}
    return {date.fromisoformat(d) for d in days}


def contiguous_ranges(days: set[date]) -> list[tuple[date, date]]:
    """Inclusive (first, last) runs of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(days):
        if ranges and (day - ranges[-1][1]).days == 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
