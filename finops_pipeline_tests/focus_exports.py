"""FOCUS export files made from the demo bill, shaped like each FOCUS version delivers them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from finops_pipeline.sources import demo
from finops_pipeline.sources.focus import TIMESTAMP_COLUMNS


def write_export(path: Path, start: date, end: date, version: str = "1.2", frame: pd.DataFrame | None = None,
                 **overrides) -> Path:
    """A FOCUS export of the demo bill for ``[start, end)`` (or of ``frame``), shaped like
    ``version`` delivers it; ``overrides`` puts a value into a column's first rows."""
    frame = demo.generate(start, end) if frame is None else frame
    for column, value in overrides.items():
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[: value[0]], column] = value[1]
    con = duckdb.connect()
    con.register("bill", frame)
    columns = []
    for name in frame.columns:
        expr = f'"{name}"'
        if name in TIMESTAMP_COLUMNS and not path.name.endswith(".parquet"):
            expr = f"strftime(\"{name}\" AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')"  # as the clouds write it
        if version == "1.3" and name == "ProviderName":
            columns += [f"{expr} AS ServiceProviderName", f"{expr} AS HostProviderName"]
            continue
        if version == "1.0" and name in ("BillingAccountType", "SubAccountType", "ContractedCost"):
            continue  # added after 1.0
        columns.append(f"{expr} AS \"{name}\"")
    if version == "1.3":
        columns.append("'{\"discount\": \"edp\"}' AS x_DiscountProgram")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = "FORMAT parquet" if path.name.endswith(".parquet") else "HEADER, DELIMITER ','"
    if path.name.endswith(".gz"):
        options += ", COMPRESSION gzip"
    con.execute(f"COPY (SELECT {', '.join(columns)} FROM bill) TO '{path}' ({options})")
    return path
