"""The one load path: a source's rows for a window become its rows of ``raw_billing``, all or
nothing."""

from __future__ import annotations

import duckdb

from finops_pipeline.sources.base import BillingSource, ExportFiles, Window
from finops_pipeline.sources.staging import load_files, stage_frame
from finops_pipeline.sources.validation import load_staged


def load_source(con: duckdb.DuckDBPyConnection, source: BillingSource, window: Window) -> int:
    """Fetch ``source``'s line items for ``window``, validate them and make them its rows of
    ``raw_billing`` for the window, in one transaction; returns the rows written. Bad rows fail
    the batch with a ``BillingDataError`` naming file, column and row count, and go to
    ``raw_billing_quarantine``."""
    batch = source.fetch(window)
    if isinstance(batch, ExportFiles):
        # Files: one strict pass straight into the table; the validating pass only when it fails.
        return load_files(con, list(batch.paths), source.name, window.start, window.end, batch.origin)
    stage_frame(con, batch, source.name)
    return load_staged(con, source.name, window.start, window.end)
