"""Runs that recover: a run whose process was killed (``kill -9``, OOM, a reboot) is marked failed
and its ``duckdb`` pool slot freed without a human, so it cannot block every later run.

Every run records its process (``finops/pid``, ``finops/host``) as it starts, and its dbt child
(``finops/dbt-pid``). Dagster's daemon cannot tell that such a run died (the default run launcher
has no worker health check), and a headless CLI run has no daemon at all, so the check runs in
two places: as every run starts (``recovering_executor``, before any step waits for the pool),
and every minute from ``dead_runs_sensor`` where the daemon runs. A run that waits for a live
run's slot sleeps, says every minute what it waits for, and stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import os
import socket
import time

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
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.executor.base import Executor
from dagster._utils.interrupts import check_captured_interrupt

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


# The run's log (console and event log) by run id, for _wait_for_pool below, which has no context.
_run_logs: dict[str, object] = {}
WAIT_POLL_S = 2.0  # how often a run waiting for the pool looks again
WAIT_LOG_EVERY_S = 60.0


def _wait_for_pool(self: InstanceConcurrencyContext) -> float:
    """How long a run whose steps wait for a pool slot sleeps before looking again.

    Replaces ``InstanceConcurrencyContext.interval_to_next_pending_claim_check``, which in
    dagster 1.13 returns ``min([0, ...])``, never more than 0: a blocked run spins at full CPU
    (dagster-io/dagster#20367 describes it). Here the run sleeps, says every minute which pool it
    waits for and which run holds it, and stops at once on Ctrl-C or SIGTERM, which Dagster only
    records while no step is running.
    """
    if check_captured_interrupt():
        raise DagsterExecutionInterruptedError()
    if not self._pending_claims:
        return 0.0
    now = time.time()
    if now - getattr(self, "_finops_told", 0.0) >= WAIT_LOG_EVERY_S:
        self._finops_told = now
        _tell_what_blocks(self)
    return max(0.0, min(WAIT_POLL_S, *(ready_at - now for ready_at in self._pending_timeouts.values())))


def _tell_what_blocks(self: InstanceConcurrencyContext) -> None:
    storage = self._instance.event_log_storage
    held = []
    for info in (storage.get_concurrency_info(key) for key in sorted(storage.get_concurrency_keys())):
        if any(p.run_id == self._run_id for p in info.pending_steps):
            holders = sorted({c.run_id for c in info.claimed_slots if c.run_id != self._run_id})
            held.append(f"pool {info.concurrency_key} ({info.slot_count} slot(s)) is held by run(s) "
                        f"{', '.join(holders) or 'none right now'}")
    message = (f"Waiting for a pool slot for {', '.join(sorted(self._pending_claims))}: "
               f"{'; '.join(held) or 'retrying the claim'}. A run whose process died is recovered as soon as "
               "another run starts, or by dead_runs_sensor; Ctrl-C or SIGTERM stops this one.")
    log = _run_logs.get(self._run_id)
    if log is not None:
        log.info(message)
    else:
        logging.getLogger("finops_pipeline").info(message)


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
        _run_logs[run_id] = plan_context.log
        try:
            yield from self._inner.execute(plan_context, execution_plan)
        finally:
            _run_logs.pop(run_id, None)


@executor(name="in_process", config_schema=in_process_executor.config_schema)
def recovering_executor(init_context) -> Executor:
    """Steps in the run's process, as ``in_process_executor``; first, dead runs are recovered,
    and a run waiting for the pool waits politely (see ``_wait_for_pool``)."""
    InstanceConcurrencyContext.interval_to_next_pending_claim_check = _wait_for_pool
    return _RecoveringExecutor(in_process_executor.executor_creation_fn(init_context))


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Every minute: a run of this host still STARTED whose process is gone is marked failed, its "
        "duckdb pool slot freed and its dbt child stopped, so it cannot block later runs.")
def dead_runs_sensor(context: SensorEvaluationContext):
    notes = recover_dead_runs(context.instance)
    for note in notes:
        context.log.warning(note)
    return SkipReason("; ".join(notes) if notes else "no dead runs")
