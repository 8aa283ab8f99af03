"""Runs that recover: a run whose process was killed (``kill -9``, OOM, a reboot) is marked failed
and its ``duckdb`` pool slot freed without a human, so it cannot block every later run.

Every run records its process (``finops/pid``, ``finops/host``) as it starts, and its dbt child
(``finops/dbt-pid``). Dagster's daemon cannot tell that such a run died (the default run launcher
has no worker health check), and a headless CLI run has no daemon at all, so the check runs in
two places: as every run starts (``recovering_executor``, before any step waits for the pool),
and every minute from ``dead_runs_sensor`` where the daemon runs.
"""

from __future__ import annotations

import os
import socket

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    executor,
    in_process_executor,
    sensor,
)
from dagster._core.executor.base import Executor

from finops_pipeline.processes import alive, kill_if

PID_TAG, HOST_TAG, DBT_PID_TAG = "finops/pid", "finops/host", "finops/dbt-pid"


def recover_dead_runs(instance: DagsterInstance, skip_run_id: str | None = None) -> list[str]:
    """Mark failed every STARTED run of this host whose process is gone, free its pool slots and
    kill its dbt child if that outlived it; returns what was done, one line per run."""
    host, done = socket.gethostname(), []
    for run in instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        pid = run.tags.get(PID_TAG)
        if run.run_id == skip_run_id or not pid or run.tags.get(HOST_TAG) != host or alive(int(pid)):
            continue
        note = (f"Run {run.run_id} ({run.job_name}) was still STARTED but its process {pid} is gone (killed?): "
                "marked failed and its duckdb pool slot freed, so later runs go on")
        dbt_pid = run.tags.get(DBT_PID_TAG)
        if dbt_pid and kill_if(int(dbt_pid), "dbt"):
            note += f"; its dbt process {dbt_pid}, still running, was stopped"
        instance.report_run_failed(run, note)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        done.append(note)
    return done


class _RecoveringExecutor(Executor):
    """The in-process executor, after recording this run's process and recovering dead runs."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        instance, run_id = plan_context.instance, plan_context.run_id
        instance.add_run_tags(run_id, {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
        for note in recover_dead_runs(instance, skip_run_id=run_id):
            plan_context.log.warning(note)
        yield from self._inner.execute(plan_context, execution_plan)


@executor(name="in_process", config_schema=in_process_executor.config_schema)
def recovering_executor(init_context) -> Executor:
    """Steps in the run's process, as ``in_process_executor``; first, dead runs are recovered."""
    return _RecoveringExecutor(in_process_executor.executor_creation_fn(init_context))


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Every minute: a run of this host still STARTED whose process is gone is marked failed, its "
        "duckdb pool slot freed and its dbt child stopped, so it cannot block later runs.")
def dead_runs_sensor(context: SensorEvaluationContext):
    notes = recover_dead_runs(context.instance)
    for note in notes:
        context.log.warning(note)
    return SkipReason("; ".join(notes) if notes else "no dead runs")
