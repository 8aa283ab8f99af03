"""Transform: the dbt models on DuckDB, staging → marts, each partition window passed as vars."""

import importlib.metadata
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, AssetsDefinition
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from finops_pipeline.defs.partitions import WAREHOUSE_POOL, billing_partitions
from finops_pipeline.defs.pipeline.recovery import DBT_PID_TAG
from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.grain import DAILY
from finops_pipeline.settings import Settings
from finops_pipeline.warehouse import utc_bounds

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt_project"

# The dbt CLI installed next to this interpreter, even when its bin folder is not on PATH.
DBT_EXECUTABLE = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class FinopsDbtCliResource(DbtCliResource):
    """dagster-dbt's resource, without two steps of every invocation this project has no use for,
    3 s of each run: asking the dbt executable its version (``dbt --version`` also asks PyPI for
    the latest release, dbt-labs/dbt-core#6085), when the dbt beside this interpreter is the
    dbt-core the project pins; and opening a dbt adapter inside Dagster's process, which
    dagster-dbt does only to fetch column metadata or row counts, never asked for here.
    test_dbt_resource.py checks both against dagster-dbt."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_resource() -> DbtCliResource:
    return FinopsDbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


def _manifest_is_stale() -> bool:
    """No manifest yet (a fresh clone), or a model, test, macro or config edited since the last parse."""
    if not dbt_project.manifest_path.exists():
        return True
    parsed = dbt_project.manifest_path.stat().st_mtime
    sources = (p for folder in ("models", "tests", "macros") for p in (DBT_PROJECT_DIR / folder).rglob("*"))
    return any(p.stat().st_mtime > parsed for p in [*sources, DBT_PROJECT_DIR / "dbt_project.yml"] if p.is_file())


@cache
def prepared_manifest() -> Path:
    """The manifest, parsed first (offline, no database needed) when `dagster dev` runs or when it
    is missing or older than the models, so the assets match the models on disk. Once a process."""
    dbt_project.prepare_if_dev()
    if _manifest_is_stale():
        dbt_resource().cli(["parse", "--quiet"], target_path=Path("target")).wait()
    return dbt_project.manifest_path


class FinopsDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"


def build_dbt_models(settings: Settings) -> AssetsDefinition:
    grain = settings.grain

    @dbt_assets(
        manifest=prepared_manifest(),
        project=dbt_project,
        partitions_def=billing_partitions(settings),
        exclude=" ".join(grain.other_marts) or None,  # only the cost mart of the pipeline's grain
        dagster_dbt_translator=FinopsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
        pool=WAREHOUSE_POOL,
    )
    def finops_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
        """Runs `dbt build` for the partition window: models are rebuilt for those periods only
        (incremental delete+insert) and their dbt tests report as asset checks. The daily models
        rebuild every day a window touches, from all of the day's line items."""
        window = context.partition_time_window
        start, end = grain.window(window.start, window.end, datetime.now(timezone.utc))
        first_day, end_day = DAILY.period(start), DAILY.period(pd.Timestamp(end).ceil("D"))
        dbt_vars = {"min_date": first_day.isoformat(), "max_date": end_day.isoformat(),
                    "min_hour": utc_bounds(start, end)[0], "max_hour": utc_bounds(start, end)[1],
                    "duckdb_path": warehouse.database}
        # "buildable": a test runs only when every model it reads is selected; a run of `+anomalies`
        # does not build daily_costs, so its reconciliation test must not run either.
        args = ["build", "--vars", json.dumps(dbt_vars), "--indirect-selection", "buildable"]
        invocation = dbt.cli(args, context=context)
        # Recorded so that, should this run's process be killed, recovery can stop a dbt left writing.
        context.instance.add_run_tags(context.run_id, {DBT_PID_TAG: str(invocation.process.pid)})
        yield from invocation.stream()

    return finops_dbt_models
