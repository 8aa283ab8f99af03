"""An incident's recent history, as the report's analysis reads it and its chart shows it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from finops_pipeline.alerting.delivery import atomic_write
from finops_pipeline.alerting.incident import Incident
from finops_pipeline.detection.charts import cost_band_chart
from finops_pipeline.detection.queries import as_periods
from finops_pipeline.grain import Grain
from finops_pipeline.warehouse import utc_bounds
from finops_pipeline.warehouse.sql_files import sql_file


def _sql(name: str) -> str:
    return sql_file("finops_pipeline.alerting", name)


def series_history(con: duckdb.DuckDBPyConnection, grain: Grain, fact: Incident, periods: int = 56) -> pd.DataFrame:
    """The incident's series over the ``periods`` up to its latest: cost, and the forecast band
    each period was scored against (``period, cost, expected_cost, lower_bound, upper_bound``)."""
    end = grain.period(fact.latest_period) + grain.step
    first = end - periods * grain.step
    costs = as_periods(grain, con.execute(_sql("series_costs").format(series_model=grain.series_model),
                                          [first, end, fact.series_key]).df(), "period")
    bands = as_periods(grain, con.execute(_sql("series_bands"), [grain.name, fact.series_key, *utc_bounds(first, end)]
                                          ).df(), "period")
    history = pd.DataFrame({"period": grain.periods(first, end)})
    history = history.merge(costs, on="period", how="left").merge(bands, on="period", how="left")
    return history.assign(cost=history["cost"].fillna(0.0))


def history_records(grain: Grain, history: pd.DataFrame) -> list[dict]:
    """A series' recent periods as the report's analysis reads them."""
    return [{"period": grain.label(r.period), "actual_usd": round(float(r.cost), 2),
             "expected_usd": None if pd.isna(r.expected_cost) else round(float(r.expected_cost), 2),
             "lower_usd": None if pd.isna(r.lower_bound) else round(float(r.lower_bound), 2),
             "upper_usd": None if pd.isna(r.upper_bound) else round(float(r.upper_bound), 2)}
            for r in history.itertuples(index=False)]


def incident_chart(con: duckdb.DuckDBPyConnection, grain: Grain, fact: Incident, charts_dir: Path) -> Path:
    """The incident's series against its band, its anomalous periods marked, as a PNG file."""
    history = series_history(con, grain, fact)
    marks = as_periods(grain, con.execute(
        "SELECT period_start AS period, actual_cost AS cost FROM anomalies WHERE incident_id = ?",
        [fact.incident_id]).df(), "period")
    png = cost_band_chart([(f"{fact.series_description}: {fact.severity} {fact.direction} from {fact.start_label}",
                            history, marks)], unit=grain.unit)
    path = charts_dir / f"incident_{fact.incident_id}.png"
    atomic_write(path, png)
    return path
