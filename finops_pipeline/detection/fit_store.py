"""The Prophet fits kept in ``forecast_fits``, keyed by a hash of their training data, anchor and
settings, so the runs of the days after a refit, and any re-run, reuse them instead of fitting
again (see ``forecasting.Fits``)."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd

from finops_pipeline.detection.forecasting import Fits
from finops_pipeline.detection.queries import sql
from finops_pipeline.grain import Grain
from finops_pipeline.warehouse import register, table_columns


def load_fits(con: duckdb.DuckDBPyConnection, grain: Grain, anchors: list[str]) -> Fits:
    """The stored fits of the refit anchors in [anchors)."""
    rows = con.execute(sql("stored_fits"), [grain.name, *anchors]).fetchall()
    return Fits({key: tuple(np.asarray(column, dtype=float) for column in columns) for key, *columns in rows})


def store_fits(con: duckdb.DuckDBPyConnection, grain: Grain, fits: Fits, anchors: list[str]) -> None:
    """Keep the fits this run used for its anchors, and only those; add the ones it ran. Meant to
    run in the transaction that writes the forecasts."""
    con.execute(sql("prune_fits"), [grain.name, *anchors, sorted(fits.used)])
    if not fits.ran:
        return
    now = pd.Timestamp(datetime.now(timezone.utc))
    columns = table_columns(con, "forecast_fits")
    frame = pd.DataFrame(
        [{"fit_key": key, "granularity": grain.name, "anchor": pd.Timestamp(task.anchor, tz="UTC"),
          "series_key": task.series_key, "model": task.model, "training_periods": len(task.values),
          "expected_cost": list(window[0]), "lower_bound": list(window[1]), "upper_bound": list(window[2]),
          "fitted_at": now}
         for key, (task, window) in sorted(fits.ran.items())],
        columns=columns,
    )
    register(con, "_fits", frame)
    # A run of another day of the week may have stored the same fit meanwhile.
    names = ", ".join(columns)
    con.execute(f"INSERT INTO forecast_fits ({names}) SELECT {names} FROM _fits "
                "WHERE fit_key NOT IN (SELECT fit_key FROM forecast_fits)")
    con.unregister("_fits")
