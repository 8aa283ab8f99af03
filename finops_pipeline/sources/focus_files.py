"""FOCUS export files (CSV, CSV.gz, Parquet) under a folder or glob: the cloud providers' own
exports (AWS Data Exports, Azure Cost Management, Google Cloud billing export as FOCUS)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from finops_pipeline.errors import SettingsError
from finops_pipeline.sources.base import CostBasis, ExportFiles, Window
from finops_pipeline.sources.staging import discover, discover_manifests


@dataclass(frozen=True)
class FocusFilesSource:
    name: ClassVar[str] = "focus"
    cost_basis: ClassVar[CostBasis] = "actual"
    path: str

    @classmethod
    def from_settings(cls, settings) -> FocusFilesSource:
        if not settings.focus_path:
            raise SettingsError("FINOPS_SOURCE=focus needs FINOPS_FOCUS_PATH (a folder or glob of FOCUS exports)")
        path = settings.focus_path
        if not Path(path).is_dir() and not glob.glob(path, recursive=True):
            # Said at load, not when the first run starts: a typo or an unmounted share.
            raise SettingsError(f"FINOPS_FOCUS_PATH={path!r}: no such folder, and no file matches it as a glob "
                                "(give the folder the exports are delivered to, or a glob such as exports/**/*.parquet)")
        return cls(path)

    def fetch(self, window: Window) -> ExportFiles:
        return ExportFiles(tuple(discover(self.path)), f"FINOPS_FOCUS_PATH={self.path}",
                           tuple(discover_manifests(self.path)))
