"""What a billing source is: a plugin that returns FOCUS line items for a window of periods.

A source is a class with a ``name`` (what FINOPS_SOURCE calls it), a ``cost_basis`` (``actual``:
costs as billed; ``estimated``: usage × a price), a ``from_settings`` constructor that reads its
options from the pipeline's settings (raising ``SettingsError`` naming the variable), and
``fetch(window)``, which returns the window's rows as a DataFrame in FOCUS columns (alone, or
as ``Rows`` with warnings) or as ``ExportFiles`` that DuckDB reads directly. A DataFrame's ``x_``
columns are kept, packed as JSON in ``x_ProviderColumns``. Register it under the entry-point group
``finops_pipeline.sources`` (see ``registry``); ``load.load_source`` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

import pandas as pd

from finops_pipeline.grain import Grain, Period

if TYPE_CHECKING:
    from finops_pipeline.settings import Settings

CostBasis = Literal["actual", "estimated"]


@dataclass(frozen=True)
class Window:
    """The periods to load: those starting in ``[start, end)``, at ``grain``."""

    start: Period
    end: Period
    grain: Grain


@dataclass(frozen=True)
class ExportFiles:
    """FOCUS export files (CSV, CSV.gz, Parquet), read by DuckDB without going through pandas, and
    the manifests that say which of them form each delivery (see ``deliveries``)."""

    paths: tuple[Path, ...]
    origin: str  # where they were looked for, for error messages
    manifests: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Rows:
    """FOCUS rows in a DataFrame with what the source has to say about them (usage it could not
    price, a refund read as a credit): shown with the partition's materialization."""

    frame: pd.DataFrame
    warnings: tuple[str, ...] = ()


@runtime_checkable
class BillingSource(Protocol):
    name: ClassVar[str]
    cost_basis: ClassVar[CostBasis]

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingSource: ...

    def fetch(self, window: Window) -> pd.DataFrame | Rows | ExportFiles: ...
