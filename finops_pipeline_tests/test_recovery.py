"""Runs that recover: a run killed with ``kill -9`` during dbt or its forecasts is recovered by
the same command run again (the dead run marked failed, its duckdb pool slot freed, no child left),
with the tables of a clean run; a run waiting for the pool sleeps, says who holds it, and stops on
SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from finops_pipeline.processes import alive

PROJECT = Path(__file__).resolve().parents[1]
RANGE = "2025-01-01...2025-09-30"


def _command() -> list[str]:
    dagster = str(Path(sys.executable).parent / "dagster")
    return [dagster, "asset", "materialize", "-m", "finops_pipeline.definitions", "--select", "*anomalies",
            "--partition-range", RANGE]


def _env(home: Path, data: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the shipped pool limits
    return {**os.environ, "DAGSTER_HOME": str(home), "FINOPS_DATA_DIR": str(data), "FINOPS_START_DATE": "2025-01-01"}


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def _tables(data: Path) -> dict[str, list]:
    with duckdb.connect(str(data / "finops.duckdb"), read_only=True) as con:
        return {
            "daily_costs": con.execute("SELECT day, round(sum(effective_cost), 6) FROM daily_costs GROUP BY 1 ORDER BY 1").fetchall(),
            "anomalies": con.execute("SELECT anomaly_id, severity FROM anomalies ORDER BY 1").fetchall(),
            "forecasts": con.execute("SELECT count(*), round(sum(expected_cost), 3) FROM cost_forecasts").fetchall(),
        }


@pytest.fixture(scope="module")
def clean_tables(tmp_path_factory) -> dict[str, list]:
    """The tables of the same command run once, undisturbed."""
    work = tmp_path_factory.mktemp("clean")
    clean = subprocess.run(_command(), env=_env(work / "home", work / "data"), cwd=work, capture_output=True,
                           text=True, timeout=600)
    assert clean.returncode == 0, clean.stdout[-3000:]
    return _tables(work / "data")


def _dbt_child(run_pid: int) -> list[int]:
    return [p for p in _children(run_pid) if "bin/dbt" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore")]


def _workers(run_pid: int) -> list[int]:
    return [p for p in _children(run_pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore")]


@pytest.mark.fault_probe
@pytest.mark.integration
@pytest.mark.parametrize("step, children", [("finops_dbt_models", _dbt_child), ("cost_forecasts", _workers)],
                         ids=["during dbt", "during forecasts"])
def test_a_killed_run_is_recovered_by_the_same_command_run_again(tmp_path, clean_tables, step, children):
    """``kill -9`` of a headless backfill while dbt runs or Prophet workers fit: no child outlives
    the recovery, the same command run again completes on its own, and the tables equal a clean run."""
    env = _env(tmp_path / "home", tmp_path / "data")
    log = tmp_path / "killed.log"
    run = subprocess.Popen(_command(), env=env, cwd=tmp_path, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    found: list[int] = []
    while time.monotonic() < deadline and not found and run.poll() is None:
        time.sleep(0.2)
        if f'Started execution of step "{step}"' in log.read_text():
            found = children(run.pid)
    assert found, f"{step} never started its child processes"
    os.kill(run.pid, signal.SIGKILL)
    run.wait()

    again = subprocess.run(_command(), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "was still STARTED but its process" in again.stdout + again.stderr
    assert not [p for p in found if alive(p)], f"{step}'s child processes outlived the killed run"
    with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == [DagsterRunStatus.FAILURE.value, DagsterRunStatus.SUCCESS.value]
        assert not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
    assert _tables(tmp_path / "data") == clean_tables


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.fault_probe
@pytest.mark.integration
def test_a_run_waiting_for_the_pool_sleeps_says_who_holds_it_and_stops_on_sigterm(tmp_path):
    env = _env(tmp_path / "home", tmp_path / "data")
    holder_log, waiter_log = tmp_path / "holder.log", tmp_path / "waiter.log"
    holder = subprocess.Popen(_command(), env=env, cwd=tmp_path, stdout=holder_log.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while 'Started execution of step "raw_billing"' not in holder_log.read_text():
            assert time.monotonic() < deadline and holder.poll() is None, holder_log.read_text()[-2000:]
            time.sleep(0.5)
        waiter = subprocess.Popen([*_command()[:-2], "--partition", "2025-03-01"], env=env, cwd=tmp_path,
                                  stdout=waiter_log.open("w"), stderr=subprocess.STDOUT)
        while "Waiting for a pool slot" not in waiter_log.read_text():
            assert time.monotonic() < deadline and waiter.poll() is None, waiter_log.read_text()[-2000:]
            time.sleep(0.5)
        with DagsterInstance.from_config(str(tmp_path / "home")) as instance:
            holder_run = next(r for r in instance.get_runs() if r.tags.get("finops/pid") == str(holder.pid))
        assert f"pool duckdb (1 slot(s)) is held by run(s) {holder_run.run_id}" in waiter_log.read_text()
        # Waiting, not spinning: well under a core over five seconds.
        before = _cpu_seconds(waiter.pid)
        time.sleep(5)
        assert _cpu_seconds(waiter.pid) - before < 1.5
        waiter.send_signal(signal.SIGTERM)
        waiter.wait(timeout=15)
    finally:
        holder.kill()
        holder.wait()
