"""Feedback: mark an incident expected, planned or not_an_issue, from the launchpad or with
`finops-feedback` (see feedback.cli)."""

from dagster import Config, OpExecutionContext, job, op
from pydantic import Field

from finops_pipeline.defs.resources import WarehouseResource
from finops_pipeline.feedback import record_feedback


class FeedbackConfig(Config):
    incident_id: str = Field(description="The incident, as `incidents.incident_id` or the alert shows it.")
    verdict: str = Field(description="expected, planned or not_an_issue")
    note: str = Field(default="", description="Why, for whoever reads the alert next.")
    given_by: str = Field(default="", description="Who says so.")


@op(description="Store a person's answer on an incident; its alerts stop, and `expected` or `planned` move the baseline.")
def record_incident_feedback(context: OpExecutionContext, config: FeedbackConfig, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as con:
        incident = record_feedback(con, config.incident_id, config.verdict, config.note, config.given_by)
    context.log.info(f"Incident {incident['incident_id']} on {incident['series_key']} marked {config.verdict}")


@job(description="Mark an incident expected, planned or not_an_issue (run config: incident_id, verdict, note, given_by).")
def incident_feedback_job():
    record_incident_feedback()
