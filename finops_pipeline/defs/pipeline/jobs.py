from dagster import define_asset_job
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from finops_pipeline.defs.partitions import PARTITIONED_STAGES, billing_partitions
from finops_pipeline.settings import Settings


def pipeline_job_name(settings: Settings) -> str:
    return f"{settings.grain.name}_cost_pipeline"


def build_pipeline_job(settings: Settings) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        pipeline_job_name(settings),
        selection=PARTITIONED_STAGES,
        partitions_def=billing_partitions(settings),
        description=f"Raw billing → dbt models → forecasts → anomalies for one or more days ({settings.grain.unit} by "
        f"{settings.grain.unit}).",
    )
