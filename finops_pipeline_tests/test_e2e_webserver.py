"""End to end through the real servers: `dagster-webserver` and `dagster-daemon` as subprocesses,
driven only through the GraphQL API, the way the UI drives them.

Checks the asset lineage the UI shows, then launches a three-day asset backfill from GraphQL and
waits for the daemon to finish it: every partitioned asset has BackfillPolicy.single_run(), so the
three days must run as exactly one run.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.harness import (
    HarnessError,
    Processes,
    TempInstance,
    free_port,
    graphql,
    start_servers,
    wait_for_code_location,
)

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
# The venv running pytest also holds the dagster CLIs (benchmarks.harness runs them from there).
BIN_DIR = Path(sys.executable).parent

STARTUP_TIMEOUT_S = 180
BACKFILL_TIMEOUT_S = 300

PARTITIONS = ["2025-03-03", "2025-03-04", "2025-03-05"]
BACKFILLED_ASSETS = ["raw_billing", "stg_focus__billing", "daily_costs", "team_costs", "daily_ai_usage", "gpu_hours",
                     "daily_cost_series", "sku_first_seen", "cost_forecasts", "anomalies"]
LINEAGE = ["raw_billing", "stg_focus__billing", "daily_costs", "daily_cost_series", "cost_forecasts", "anomalies",
           "incidents", "anomaly_report", "anomaly_alerts"]
GROUPS = {
    "raw_billing": "ingest",
    "stg_focus__billing": "transform",
    "daily_costs": "transform",
    "team_costs": "transform",
    "daily_ai_usage": "transform",
    "gpu_hours": "transform",
    "daily_cost_series": "transform",
    "sku_first_seen": "transform",
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


@dataclass
class DagsterStack:
    """The two servers, their logs, and a GraphQL client for them."""

    url: str
    data_dir: Path
    procs: Processes

    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = graphql(self.url, query, variables, timeout)
        if body.get("errors"):
            raise GraphQLError(json.dumps(body["errors"], indent=2)[:4000])
        return body["data"]

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n\n{self.procs.log_tails()}", pytrace=False)

    def check_alive(self) -> None:
        # A server that died will never answer: say so now rather than at the timeout.
        try:
            self.procs.check_alive()
        except HarnessError as exc:
            self.fail(str(exc))


@pytest.fixture
def dagster_stack(tmp_path: Path):
    for exe in ("dagster-webserver", "dagster-daemon"):
        assert (BIN_DIR / exe).exists(), f"{exe} not found next to {sys.executable}"

    # The project's instance config (concurrency pool, run queue), with storage in tmp; nothing from
    # the developer's shell (or from this pytest process, whose conftest import exported
    # FINOPS_DUCKDB_PATH) may point the servers elsewhere; no LLM or Slack credentials, so reports
    # use the template and alerts go to the outbox.
    instance = TempInstance(tmp_path).create()
    port = free_port()
    env = instance.env("2025-01-01",  # the partition keys below assume this start
                       code=REPO_ROOT, FINOPS_DAGSTER_URL=f"http://127.0.0.1:{port}")
    with Processes(env, tmp_path, REPO_ROOT) as procs:  # stops daemon, then webserver, whatever happens
        stack = DagsterStack(url=f"http://127.0.0.1:{port}", data_dir=instance.data_dir, procs=procs)
        try:
            start_servers(procs, port, STARTUP_TIMEOUT_S, wait_for_location=False)
        except HarnessError as exc:
            stack.fail(str(exc))
        yield stack


def _wait_for_code_location(stack: DagsterStack) -> list[dict]:
    """Wait until the code location is loaded (failing at once on an import error, with its
    traceback), then return the asset nodes."""
    try:
        wait_for_code_location(stack.url, STARTUP_TIMEOUT_S, stack.check_alive)
    except HarnessError as exc:
        stack.fail(f"webserver/code location not ready: {exc}")
    nodes = stack.gql(ASSET_NODES_QUERY)["assetNodes"]
    assert nodes, "code location loaded but no asset nodes"
    return nodes


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
