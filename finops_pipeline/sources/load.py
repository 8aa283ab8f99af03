"""The one load path: a source's rows for a window become its rows of ``raw_billing``, all or
nothing per billing month, never deleting a day without evidence."""

from __future__ import annotations

import duckdb

from finops_pipeline.sources.base import BillingSource, ExportFiles, Rows, Window
from finops_pipeline.sources.staging import load_files, stage_frame
from finops_pipeline.sources.validation import Loaded, load_staged


def load_source(con: duckdb.DuckDBPyConnection, source: BillingSource, window: Window,
                 allow_deletes: bool = False) -> Loaded:
    """Fetch ``source``'s line items for ``window``, validate them and make them its rows of
    ``raw_billing`` for the window. A billing month with a bad cost is rejected whole (listed in
    ``Loaded.verdict``; its rows go to ``raw_billing_quarantine``) while the others are written.
    Raises ``UnevidencedDelete`` rather than empty a day that held rows, unless ``allow_deletes``."""
    batch = source.fetch(window)
    if isinstance(batch, ExportFiles):
        return load_files(con, batch, source.name, window.start, window.end, allow_deletes)
    rows = batch if isinstance(batch, Rows) else Rows(batch)
    stage_frame(con, rows.frame, source.name)
    loaded = load_staged(con, source.name, window.start, window.end, allow_deletes)
    loaded.warnings = [*rows.warnings, *loaded.warnings]
    return loaded
