"""Stage 2: dbt models on DuckDB, staging → marts, each partition window passed as dbt vars."""

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from finops_pipeline.partitions import daily_partitions

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

# The dbt CLI installed next to this interpreter, even when its bin folder is not on PATH.
DBT_EXECUTABLE = shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
if not dbt_project.manifest_path.exists() or dbt_project.preparer.using_dagster_dev():
    # A fresh clone has no manifest yet, and `dagster dev` should see model edits: parse
    # (offline, no database needed).
    DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE).cli(
        ["parse", "--quiet"], target_path=Path("target")
    ).wait()


class FinopsDbtTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "transform"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:finops"]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    partitions_def=daily_partitions,
    dagster_dbt_translator=FinopsDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
    pool="duckdb",
)
def finops_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    """Runs `dbt build` for the partition window: models are rebuilt for those days only
    (incremental delete+insert) and their dbt tests report as asset checks."""
    window = context.partition_time_window
    dbt_vars = {"min_date": window.start.date().isoformat(), "max_date": window.end.date().isoformat()}
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()
