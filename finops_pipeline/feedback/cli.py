"""`finops-feedback <incident_id> <verdict>`: the feedback job from a shell, recorded in the
Dagster instance.

    finops-feedback <incident_id> expected --note "new cluster for the Q4 launch" --by alice
"""

import argparse
import os
import sys

from dagster import DagsterInstance

from finops_pipeline.feedback import VERDICTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="finops-feedback",
                                     description="Mark an incident expected, planned or not_an_issue.")
    parser.add_argument("incident_id")
    parser.add_argument("verdict", choices=VERDICTS)
    parser.add_argument("--note", default="")
    parser.add_argument("--by", default="", dest="given_by")
    args = parser.parse_args(argv)
    from finops_pipeline.definitions import build_definitions  # the CLI sits above the definitions
    from finops_pipeline.settings import load_settings

    defs = build_definitions(load_settings())
    config = {"incident_id": args.incident_id, "verdict": args.verdict, "note": args.note, "given_by": args.given_by}
    result = defs.resolve_job_def("incident_feedback_job").execute_in_process(
        run_config={"ops": {"record_incident_feedback": {"config": config}}},
        instance=DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        failure = next(e for e in result.all_events if e.is_step_failure)
        error = failure.event_specific_data.error
        print(f"finops-feedback: {(error.cause or error).message.strip()}", file=sys.stderr)
        return 1
    print(f"incident {args.incident_id} marked {args.verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
