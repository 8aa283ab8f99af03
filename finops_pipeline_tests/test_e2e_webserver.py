"""End to end through the real servers: `dagster-webserver` and `dagster-daemon` as subprocesses,
driven only through the GraphQL API, the way the UI drives them.

Checks the asset lineage the UI shows, then launches a three-day asset backfill from GraphQL and
waits for the daemon to finish it: every partitioned asset has BackfillPolicy.single_run(), so the
three days must run as exactly one run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import requests
except ImportError:  # `requests` is a dev extra; fall back to the standard library
    requests = None
    import urllib.error
    import urllib.request

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
# The venv running pytest also holds the dagster CLIs; not resolved, so a symlinked python still
# points at the venv's bin folder.
BIN_DIR = Path(sys.executable).parent

STARTUP_TIMEOUT_S = 180
BACKFILL_TIMEOUT_S = 300

PARTITIONS = ["2025-03-03", "2025-03-04", "2025-03-05"]
BACKFILLED_ASSETS = ["raw_billing", "stg_focus__billing", "daily_costs", "team_costs", "cost_forecasts", "anomalies"]
LINEAGE = ["raw_billing", "stg_focus__billing", "daily_costs", "cost_forecasts", "anomalies", "incidents",
           "anomaly_report", "anomaly_alerts"]
GROUPS = {
    "raw_billing": "ingest",
    "stg_focus__billing": "transform",
    "daily_costs": "transform",
    "team_costs": "transform",
    "cost_forecasts": "detect",
    "anomalies": "detect",
    "incidents": "detect",
    "anomaly_report": "alerting",
    "anomaly_alerts": "alerting",
}
# BulkActionStatus in dagster 1.13: asset backfills end in COMPLETED_SUCCESS or COMPLETED_FAILED;
# COMPLETED is the deprecated pre-1.9 name, kept here so the wait still ends if it comes back.
BACKFILL_TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


# --------------------------------------------------------------------------------------------
# GraphQL queries (field names from dagster_graphql/schema in dagster 1.13)
# --------------------------------------------------------------------------------------------

LOCATIONS_QUERY = """
query Locations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message stack } }
      }
    }
    ... on PythonError { message }
  }
}
"""

ASSET_NODES_QUERY = """
query AssetNodes {
  assetNodes { assetKey { path } dependencyKeys { path } groupName }
}
"""

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status error { message stack } }
    ... on Error { message }
  }
}
"""

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs {
      results { runId status jobName assetSelection { path } tags { key value } }
    }
    ... on Error { message }
  }
}
"""

RUN_ERRORS_QUERY = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { level message stepKey }
        ... on ErrorEvent { error { message cause { message } } }
      }
    }
  }
}
"""

PARTITION_STATS_QUERY = """
query PartitionStats($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    partitionStats { numMaterialized numFailed numMaterializing numPartitions }
  }
}
"""


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class GraphQLError(RuntimeError):
    pass


def _free_port() -> int:
    # Bind to port 0 and let the kernel choose; a tiny race before the webserver binds is acceptable.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_json(url: str, payload: dict, timeout: float) -> dict:
    if requests is not None:
        response = requests.post(url, json=payload, timeout=timeout)
        # GraphQL reports query errors as JSON even with a 4xx status: read the body first.
        try:
            return response.json()
        except ValueError:
            response.raise_for_status()
            raise
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def _get_ok(url: str, timeout: float) -> bool:
    try:
        if requests is not None:
            return requests.get(url, timeout=timeout).ok
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # refused / reset while the server starts
        return False


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"<{path.name}: not written (process not started)>"
    # Dagster colours its log lines; the escape codes only clutter an assertion message.
    text = re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace")).splitlines()
    return f"----- last {min(lines, len(text))} lines of {path.name} -----\n" + "\n".join(text[-lines:])


@dataclass
class DagsterStack:
    """The two servers, their logs, and a GraphQL client for them."""

    url: str
    data_dir: Path
    logs: list[Path]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = _post_json(f"{self.url}/graphql", {"query": query, "variables": variables or {}}, timeout)
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"], indent=2)[:4000])
        return body["data"]

    def log_tails(self) -> str:
        return "\n\n".join(_tail(p) for p in self.logs)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n\n{self.log_tails()}", pytrace=False)

    def check_alive(self) -> None:
        # A server that died will never answer: say so now rather than at the timeout.
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                self.fail(f"{name} exited early with code {proc.returncode}")


def stop_process_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group (code servers and run workers are children), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Children may outlive a leader that exited on its own: always sweep the group.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _server_env(dagster_home: Path, data_dir: Path, port: int, tmp_path: Path) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        # Hermetic: nothing from the developer's shell (or from this pytest process, whose
        # conftest import exported FINOPS_DUCKDB_PATH) may point the servers elsewhere; no
        # LLM or Slack credentials, so reports use the template and alerts go to the outbox.
        if not k.startswith(("FINOPS_", "DAGSTER_", "DBT_"))
        and k not in {"OPENAI_API_KEY", "OPENAI_BASE_URL", "SLACK_BOT_TOKEN"}
    }
    env.update(
        PATH=f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",
        DAGSTER_HOME=str(dagster_home),
        FINOPS_DATA_DIR=str(data_dir),
        FINOPS_DUCKDB_PATH=str(data_dir / "finops.duckdb"),
        FINOPS_START_DATE="2025-01-01",  # the partition keys below assume this start
        FINOPS_DAGSTER_URL=f"http://127.0.0.1:{port}",
        # Per-run dbt artifacts go to tmp, not into dbt_project/target in the repo.
        DBT_TARGET_PATH=str(tmp_path / "dbt_target"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def dagster_stack(tmp_path: Path):
    for exe in ("dagster-webserver", "dagster-daemon"):
        assert (BIN_DIR / exe).exists(), f"{exe} not found next to {sys.executable}"

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # The project's instance config (concurrency pool, run queue), with storage in tmp.
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = _free_port()
    env = _server_env(dagster_home, data_dir, port, tmp_path)

    commands = {
        "webserver": [str(BIN_DIR / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        "daemon": [str(BIN_DIR / "dagster-daemon"), "run", "-w", "workspace.yaml"],
    }
    stack = DagsterStack(url=f"http://127.0.0.1:{port}", data_dir=data_dir,
                         logs=[tmp_path / f"{name}.log" for name in commands])
    log_files = []

    def start(name: str) -> None:
        log_file = open(tmp_path / f"{name}.log", "wb")
        log_files.append(log_file)
        stack.procs[name] = subprocess.Popen(
            commands[name], cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # own process group, for killpg
        )

    try:
        # One at a time: on a fresh DAGSTER_HOME both servers would create the SQLite storage at
        # once and one dies on "table alembic_version already exists". The webserver answers
        # /server_info only once its instance (and storage) is up.
        start("webserver")
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _get_ok(f"{stack.url}/server_info", timeout=5):
            stack.check_alive()
            if time.monotonic() > deadline:
                stack.fail(f"webserver did not answer /server_info within {STARTUP_TIMEOUT_S}s")
            time.sleep(0.5)
        start("daemon")
        yield stack
    finally:
        # Daemon first, so it launches nothing while the webserver goes down.
        for name in ("daemon", "webserver"):
            if name in stack.procs:
                stop_process_group(stack.procs[name])
        for log_file in log_files:
            log_file.close()


def _wait_for_code_location(stack: DagsterStack) -> list[dict]:
    """Wait until the webserver answers, the code location is loaded, and asset nodes are there."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_problem = "no answer yet"
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            workspace = stack.gql(LOCATIONS_QUERY, timeout=10)["workspaceOrError"]
            entries = workspace.get("locationEntries") or []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    # A definitions import error will not fix itself: fail now, with the traceback.
                    err = errors[0]["locationOrLoadError"]
                    stack.fail(f"code location {errors[0]['name']!r} failed to load: {err['message']}\n"
                               + "".join(err["stack"]))
                nodes = stack.gql(ASSET_NODES_QUERY)["assetNodes"]
                if nodes:
                    return nodes
                last_problem = "location loaded but no asset nodes"
            else:
                last_problem = f"workspace: {workspace}"
        except (OSError, GraphQLError, ValueError) as exc:  # connection refused, server still starting
            last_problem = repr(exc)
        time.sleep(1)
    stack.fail(f"webserver/code location not ready after {STARTUP_TIMEOUT_S}s; last: {last_problem}")


def _run_error_messages(stack: DagsterStack, run_id: str) -> str:
    events = stack.gql(RUN_ERRORS_QUERY, {"runId": run_id})["logsForRun"].get("events", [])
    lines = []
    for event in events:
        if event.get("level") not in ("ERROR", "CRITICAL"):
            continue
        lines.append(f"[{event.get('stepKey')}] {event['message']}")
        # A step failure wraps the user's exception: its cause is the line that names the bug.
        error = event.get("error") or {}
        for part in (error, error.get("cause") or {}):
            if part.get("message"):
                lines.append("    " + part["message"].strip())
    return "\n".join(lines[-40:]) or "<no ERROR events>"


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


def test_lineage_and_single_run_backfill_through_webserver(dagster_stack: DagsterStack):
    stack = dagster_stack
    started = time.monotonic()

    # 1. Lineage and groups, as the asset graph in the UI shows them.
    nodes = {"/".join(n["assetKey"]["path"]): n for n in _wait_for_code_location(stack)}
    print(f"code location ready after {time.monotonic() - started:.0f}s")
    missing = sorted(set(GROUPS) - set(nodes))
    assert not missing, f"assets missing from the webserver: {missing}; have {sorted(nodes)}"
    for upstream, downstream in zip(LINEAGE, LINEAGE[1:]):
        deps = ["/".join(d["path"]) for d in nodes[downstream]["dependencyKeys"]]
        assert upstream in deps, f"{downstream} should depend on {upstream}; its deps are {deps}"
    groups = {key: nodes[key]["groupName"] for key in GROUPS}
    assert groups == GROUPS

    # 2. A three-day asset backfill, launched the way the UI's "Materialize" dialog does.
    launched = stack.gql(LAUNCH_BACKFILL_MUTATION, {"params": {
        "partitionNames": PARTITIONS,
        "assetSelection": [{"path": [key]} for key in BACKFILLED_ASSETS],
    }})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        stack.fail(f"launchPartitionBackfill returned {launched['__typename']}: {launched.get('message')}\n"
                   + "".join(launched.get("stack") or []))
    backfill_id = launched["backfillId"]

    # 3. The daemon plans the backfill, the run queue launches its run; wait for the end state.
    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    backfill = None
    while time.monotonic() < deadline:
        stack.check_alive()
        backfill = stack.gql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in BACKFILL_TERMINAL:
            break
        time.sleep(2)
    else:
        stack.fail(f"backfill {backfill_id} not finished after {BACKFILL_TIMEOUT_S}s: {backfill}")
    print(f"backfill {backfill_id} {backfill['status']} after {time.monotonic() - started:.0f}s")

    runs_or_error = stack.gql(RUNS_QUERY, {"filter": {"tags": [{"key": "dagster/backfill", "value": backfill_id}]}})
    runs = runs_or_error["runsOrError"].get("results")
    assert runs is not None, runs_or_error
    failed = [r for r in runs if r["status"] != "SUCCESS"]
    if backfill["status"] != "COMPLETED_SUCCESS" or failed:
        details = "\n\n".join(f"run {r['runId']} {r['status']}:\n{_run_error_messages(stack, r['runId'])}"
                              for r in failed)
        stack.fail(f"backfill {backfill_id} ended {backfill['status']} (error: {backfill.get('error')}); "
                   f"runs: {[(r['runId'], r['status']) for r in runs]}\n{details}")

    # 4. Single-run backfill policy: one run covering the whole range and every selected asset.
    assert len(runs) == 1, f"expected one run for the single-run backfill, got {len(runs)}: {runs}"
    run = runs[0]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/asset_partition_range_start") == PARTITIONS[0], tags
    assert tags.get("dagster/asset_partition_range_end") == PARTITIONS[-1], tags
    assert sorted("/".join(k["path"]) for k in run["assetSelection"]) == sorted(BACKFILLED_ASSETS)

    # 5. Every backfilled asset now has exactly the three days materialized.
    stats = stack.gql(PARTITION_STATS_QUERY, {"keys": [{"path": [k]} for k in BACKFILLED_ASSETS]})["assetNodes"]
    materialized = {"/".join(n["assetKey"]["path"]): n["partitionStats"]["numMaterialized"] for n in stats}
    assert materialized == {key: len(PARTITIONS) for key in BACKFILLED_ASSETS}, materialized
    unfinished = {"/".join(n["assetKey"]["path"]): n["partitionStats"] for n in stats
                  if n["partitionStats"]["numFailed"] or n["partitionStats"]["numMaterializing"]}
    assert not unfinished, unfinished

    # The run really wrote the DuckDB file in the temporary data folder, not the repo's data/.
    assert (stack.data_dir / "finops.duckdb").exists()
