"""The DuckDB warehouse: schema and migrations, connections, transactions, windowed replace."""

from finops_pipeline.warehouse.migrations import migrate
from finops_pipeline.warehouse.transactions import (register, replace_window, table_columns, transaction, unordered,
                                                     utc_bounds)

__all__ = ["migrate", "register", "replace_window", "table_columns", "transaction", "unordered", "utc_bounds"]
