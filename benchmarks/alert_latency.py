"""Benchmark: how long from an `anomalies` materialization with a new incident to its Slack post.

The real servers, as `dagster dev` runs them: `dagster-webserver` and `dagster-daemon` as
subprocesses (like finops_pipeline_tests/test_e2e_webserver.py), `anomalies_sensor` running as it
ships, Slack posts going through slack_sdk to a local Slack Web API server in this process.

1. A temporary DAGSTER_HOME (a copy of dagster_home/dagster.yaml) and data folder, the demo bill
   from --start (2025-03-01), SLACK_BOT_TOKEN=xoxb-bench, no LLM (template report).
2. The history (--start ... --history-end) as one single-run backfill, before the daemon runs.
3. The webserver and the daemon; the sensor's first tick sends the history's alerts: wait until
   that alert run has finished and posts have stopped.
4. Per timed run, the next injected anomaly's first day (api_loop 2025-05-12, cryptominer
   2025-07-19, forgotten_gpu 2025-10-06, ...): the days before it are materialized untimed (one
   run) and their alert run drained; then the day itself with `dagster asset materialize`.
   t0 = the `anomalies` materialization event as stored in the instance, t1 = arrival of the
   next chat.postMessage at the local server. Prints t1 - t0 with where the time went (sensor
   pickup, run queue, run worker start, each step), then the median and max against the target.

The servers and every run load a snapshot of the code taken at the start (finops_pipeline,
dbt_project, workspace.yaml, copied into the work folder): an edit in the checkout during the
benchmark (several minutes) neither breaks a run halfway nor mixes two versions in one figure.
`--live` runs the checkout itself; `--code DIR` a prepared copy (to try a change without editing
the checkout: DIR holds finops_pipeline/, dbt_project/ and workspace.yaml).

    python benchmarks/alert_latency.py [--runs 3] [--target 60] [--workdir DIR] [--keep] [--live | --code DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # benchmarks and finops_pipeline_tests (the local Slack server) are not installed

from benchmarks.harness import (  # noqa: E402
    Processes,
    TempInstance,
    free_port,
    graphql,
    materialize_command,
    start_servers,
    tail,
)

INJECTED = REPO / "finops_pipeline" / "sources" / "demo_injected_anomalies.csv"
SENSOR = "anomalies_sensor"
ALERT_JOB = "anomaly_alert_job"
STARTUP_TIMEOUT_S = 240
MATERIALIZE_TIMEOUT_S = 1800
ALERT_TIMEOUT_S = 600  # a post that takes longer is reported as missing, not waited for
QUIET_S = 5  # no new Slack request for this long after the alert runs finished: drained


# --------------------------------------------------------------------------------------------
# The local Slack server, with arrival times
# --------------------------------------------------------------------------------------------


class TimedSlack:
    """A SlackServer whose requests get an arrival time (wall clock, like Dagster's event
    timestamps): a thread watches ``requests`` every 5 ms, so only the server's public surface
    (``api_url``, ``requests``, ``posts``) is relied on. Resolution: 5 ms."""

    def __init__(self) -> None:
        from benchmarks.slack_server import SlackServer

        self.server = SlackServer()
        self.arrivals: list[float] = []  # arrivals[i]: when server.requests[i] arrived
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            while len(self.arrivals) < len(self.server.requests):
                self.arrivals.append(now)
            time.sleep(0.005)

    def __enter__(self) -> TimedSlack:
        self.server.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.server.__exit__(*exc)

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def request_count(self) -> int:
        return len(self.arrivals)

    def last_arrival(self) -> float | None:
        return self.arrivals[-1] if self.arrivals else None

    def post_count(self) -> int:
        return len(self.server.posts)

    def first_post_after(self, index: int) -> tuple[float, dict] | None:
        """The first chat.postMessage among the requests from ``index`` on: (arrival, body)."""
        for i in range(index, len(self.arrivals)):
            request = self.server.requests[i]
            if request["path"].endswith("chat.postMessage"):
                return self.arrivals[i], request["body"]
        return None


# --------------------------------------------------------------------------------------------
# The Dagster instance: materializations, alert runs, their events
# --------------------------------------------------------------------------------------------


def latest_anomalies_storage_id(instance) -> int | None:
    from dagster import AssetKey

    records = instance.fetch_materializations(AssetKey("anomalies"), limit=1).records
    return records[0].storage_id if records else None


def anomalies_after(instance, storage_id: int | None) -> list:
    from dagster import AssetKey, AssetRecordsFilter

    return list(instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("anomalies"), after_storage_id=storage_id), limit=1000,
        ascending=True).records)


def alert_runs_for(instance, source_run_id: str) -> list:
    from dagster import RunsFilter

    return list(instance.get_run_records(filters=RunsFilter(job_name=ALERT_JOB,
                                                            tags={"finops/source_run": source_run_id})))


def open_alert_runs(instance) -> list:
    from dagster import DagsterRunStatus, RunsFilter

    unfinished = [s for s in DagsterRunStatus if s not in
                  (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
    return list(instance.get_run_records(filters=RunsFilter(job_name=ALERT_JOB, statuses=unfinished)))


def wait_drained(instance, slack: TimedSlack, procs: Processes, source_run_ids: list[str], what: str) -> None:
    """Until every source run has its alert run, all alert runs are finished, and no Slack request
    came for QUIET_S seconds."""
    from dagster import DagsterRunStatus

    deadline = time.monotonic() + ALERT_TIMEOUT_S
    while True:
        procs.check_alive("webserver", "daemon")
        runs = {rid: alert_runs_for(instance, rid) for rid in source_run_ids}
        done = all(runs.values()) and not open_alert_runs(instance)
        last = slack.last_arrival()
        if done and (last is None or time.time() - last >= QUIET_S):
            failed = [r.dagster_run.run_id for rs in runs.values() for r in rs
                      if r.dagster_run.status != DagsterRunStatus.SUCCESS]
            if failed:
                print(f"  warning: alert run(s) {failed} for {what} did not succeed", flush=True)
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"alert runs for {what} not drained after {ALERT_TIMEOUT_S}s: "
                               f"{ {k: [r.dagster_run.status.value for r in v] for k, v in runs.items()} }\n"
                               f"{tail(procs.log('daemon'))}")
        time.sleep(1)


def run_timeline(instance, run_id: str) -> dict:
    """Timestamps of an alert run: created (the sensor's tick), dequeued, launched, started, and
    per step: worker spawned, step started, step finished."""
    record = instance.get_run_record_by_id(run_id)
    marks = {"created": record.create_timestamp.timestamp(), "steps": {}}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind in ("PIPELINE_ENQUEUED", "PIPELINE_DEQUEUED", "PIPELINE_STARTING", "PIPELINE_START",
                    "PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
            marks.setdefault(kind, entry.timestamp)
        elif event.step_key and kind in ("STEP_WORKER_STARTING", "STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            marks["steps"].setdefault(event.step_key, {}).setdefault(kind, entry.timestamp)
    return marks


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


def incident_days(after: date) -> list[tuple[date, str]]:
    with open(INJECTED) as f:
        rows = [(date.fromisoformat(r["start_date"]), r["name"]) for r in csv.DictReader(f)]
    return sorted(r for r in rows if r[0] > after)


def snapshot_code(work: Path) -> Path:
    """A copy of what the code location loads; runs import it first, as their working directory
    comes before the editable install on sys.path."""
    code = work / "code"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    shutil.copytree(REPO / "finops_pipeline", code / "finops_pipeline",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # The parsed manifest too (mtimes kept, so it is not re-parsed), not dbt's per-run folders.
    shutil.copytree(REPO / "dbt_project", code / "dbt_project",
                    ignore=shutil.ignore_patterns("logs", "dbt_packages", "finops_dbt_models-*", "dbt.log", "*.duckdb*"))
    shutil.copy2(REPO / "workspace.yaml", code / "workspace.yaml")
    return code


def setup_env(work: Path, code_dir: Path, slack_url: str, port: int, start: date) -> dict:
    """A temporary instance and data folder in the work folder, the demo bill, Slack at the local
    server, no LLM; the code loaded from ``code_dir``."""
    return TempInstance(work).create().env(
        start, code=code_dir, FINOPS_SOURCE="demo", FINOPS_DAGSTER_URL=f"http://127.0.0.1:{port}",
        SLACK_BOT_TOKEN="xoxb-bench", FINOPS_SLACK_API_URL=slack_url)


def sensor_interval(code_dir: Path, target: float) -> int:
    """anomalies_sensor's minimum_interval_seconds, from the definitions (an import error in the
    code stops the benchmark here, before anything runs)."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*currently in beta")  # backfill_policy, pool, ...
    import finops_pipeline
    from finops_pipeline.definitions import defs

    if not Path(finops_pipeline.__file__).resolve().is_relative_to(code_dir.resolve()):
        raise RuntimeError(f"finops_pipeline imported from {finops_pipeline.__file__}, not from {code_dir}")
    sensor = next(s for s in defs.sensors if s.name == SENSOR)
    print(f"{SENSOR}: minimum_interval_seconds={sensor.minimum_interval_seconds}, default status "
          f"{sensor.default_status.value}; target <= {target:.0f} s", flush=True)
    return sensor.minimum_interval_seconds


def served_interval(url: str) -> int | None:
    """The same, as the webserver loaded it."""
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name minIntervalSeconds } } } } }"
    nodes = (graphql(url, query).get("data") or {}).get("repositoriesOrError", {}).get("nodes") or []
    return next((s["minIntervalSeconds"] for n in nodes for s in n["sensors"] if s["name"] == SENSOR), None)


def fmt(seconds: float | None) -> str:
    return "   n/a" if seconds is None else f"{seconds:6.1f}"


def breakdown(t0: float, t1: float, marks: dict) -> tuple[list[tuple[str, float | None]], str]:
    """Consecutive segments from t0 to t1, and a one-line timeline."""
    def at(key):
        return marks.get(key)

    segments = [("sensor pickup (t0 -> run created)", marks["created"] - t0)]
    launched = at("PIPELINE_STARTING")
    started = at("PIPELINE_START")
    segments.append(("run queue (created -> launched; held while the duckdb pool is busy)", launched - marks["created"] if launched else None))
    segments.append(("run worker start (launched -> run started)",
                     started - launched if started and launched else None))
    previous = started
    for step, ev in sorted(marks["steps"].items(), key=lambda kv: min(kv[1].values())):
        spawn, begin = ev.get("STEP_WORKER_STARTING"), ev.get("STEP_START")
        end = ev.get("STEP_SUCCESS") or ev.get("STEP_FAILURE")
        first = spawn or begin
        if previous and first:
            segments.append((f"  between steps (before {step})", first - previous))
        if begin and first:
            segments.append((f"  {step}: step process start", begin - first))
        if step == "anomaly_alerts" and begin:
            segments.append((f"  {step}: start -> Slack post", t1 - begin))
            previous = None
            break
        if begin and end:
            segments.append((f"  {step}: work", end - begin))
        previous = end
    line = "  ".join(f"{k}={fmt(v).strip()}s" for k, v in (
        ("created", marks["created"] - t0), ("launched", launched - t0 if launched else None),
        ("started", started - t0 if started else None), ("posted", t1 - t0)))
    return segments, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed incidents (default 3)")
    parser.add_argument("--target", type=float, default=60.0, help="latency target in seconds (default 60)")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 3, 1), help="FINOPS_START_DATE")
    parser.add_argument("--history-end", type=date.fromisoformat, default=date(2025, 5, 10),
                        help="last day of the pre-loaded history (default 2025-05-10)")
    parser.add_argument("--workdir", type=Path, help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, instance, DuckDB)")
    parser.add_argument("--live", action="store_true", help="run the checkout, not a snapshot of it")
    parser.add_argument("--code", type=Path, help="run this copy of the code (finops_pipeline/, dbt_project/, "
                        "workspace.yaml) instead of a snapshot of the checkout")
    args = parser.parse_args()

    targets = incident_days(args.history_end)[: args.runs]
    if len(targets) < args.runs:
        print(f"only {len(targets)} injected incidents after {args.history_end}; timing those", flush=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="alert_latency_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(exist_ok=True)

    # SIGTERM/SIGHUP end the script like Ctrl-C, through the cleanup below.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)

    port = free_port()
    results: list[dict] = []
    procs = None
    interval = None
    finished = False
    try:
        # Before anything imports finops_pipeline, so this process loads the snapshot too.
        code_dir = args.code.resolve() if args.code else REPO if args.live else snapshot_code(work)
        sys.path.insert(0, str(code_dir))
        with TimedSlack() as slack:
            env = setup_env(work, code_dir, slack.api_url, port, args.start)
            os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "FINOPS_", "DBT_"))})
            os.environ["SLACK_BOT_TOKEN"] = env["SLACK_BOT_TOKEN"]
            procs = Processes(env, work / "logs", code_dir)
            kind = "given copy" if args.code else "the checkout" if args.live else "a snapshot of the checkout"
            print(f"work folder: {work}; code: {kind} ({code_dir})", flush=True)
            interval = sensor_interval(code_dir, args.target)
            from dagster import DagsterInstance

            instance = DagsterInstance.get()

            # 2. History, no daemon yet.
            began = time.monotonic()
            proc = procs.start("history", materialize_command(args.start, args.history_end))
            procs.wait("history", proc, MATERIALIZE_TIMEOUT_S)
            history_runs = sorted({r.run_id for r in anomalies_after(instance, None)})
            print(f"history {args.start}...{args.history_end}: {len(history_runs)} run(s), "
                  f"{time.monotonic() - began:.0f} s", flush=True)

            # 3. Servers; the sensor's first tick alerts on the history.
            began = time.monotonic()
            url = start_servers(procs, port, STARTUP_TIMEOUT_S)
            print(f"webserver {url} ready after {time.monotonic() - began:.0f} s; daemon started", flush=True)
            served = served_interval(url)
            if served != interval:
                print(f"warning: the servers loaded {SENSOR} with minimum_interval_seconds={served}", flush=True)
                interval = served
            wait_drained(instance, slack, procs, history_runs, "the history")
            print(f"history alerts drained {time.monotonic() - began:.0f} s after start: "
                  f"{slack.post_count()} post(s), {slack.request_count()} Slack request(s)", flush=True)

            # 4. The timed incidents.
            done_until = args.history_end
            for n, (day, name) in enumerate(targets, 1):
                if day - done_until > timedelta(days=1):
                    first, last = done_until + timedelta(days=1), day - timedelta(days=1)
                    before, posts = latest_anomalies_storage_id(instance), slack.post_count()
                    began = time.monotonic()
                    proc = procs.start(f"untimed_{n}", materialize_command(first, last))
                    procs.wait(f"untimed_{n}", proc, MATERIALIZE_TIMEOUT_S)
                    runs = sorted({r.run_id for r in anomalies_after(instance, before)})
                    wait_drained(instance, slack, procs, runs, f"{first}...{last}")
                    span = f"{first}" if first == last else f"{first}...{last}"
                    print(f"run {n}: untimed {span} materialized and drained in "
                          f"{time.monotonic() - began:.0f} s ({slack.post_count() - posts} post(s))", flush=True)

                before, index = latest_anomalies_storage_id(instance), slack.request_count()
                proc = procs.start(f"timed_{n}", materialize_command(day, day))
                deadline = time.monotonic() + MATERIALIZE_TIMEOUT_S
                record = post = None
                while True:
                    procs.check_alive("webserver", "daemon")
                    if record is None:
                        found = anomalies_after(instance, before)
                        record = found[0] if found else None
                        if record is not None:
                            deadline = min(deadline, time.monotonic() + ALERT_TIMEOUT_S)
                    post = slack.first_post_after(index)
                    if record is not None and post is not None:
                        break
                    if proc.poll() not in (None, 0):
                        raise RuntimeError(f"timed_{n} failed with code {proc.returncode}\n{tail(procs.log(f'timed_{n}'))}")
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                procs.wait(f"timed_{n}", proc, MATERIALIZE_TIMEOUT_S)
                if record is None:
                    raise RuntimeError(f"timed_{n}: no anomalies materialization for {day}")
                meta = record.asset_materialization.metadata
                new = meta.get("new_anomalies")
                new = getattr(new, "value", new)
                t0 = record.timestamp
                result = {"n": n, "day": day, "name": name, "t0": t0, "new_anomalies": new, "latency": None}
                if post is None:
                    print(f"run {n}: {day} ({name}): {new} new anomalies, NO Slack post within "
                          f"{ALERT_TIMEOUT_S} s", flush=True)
                    results.append(result)
                    done_until = day
                    continue
                t1, body = post
                result.update(latency=t1 - t0, text=(body.get("text") or "")[:100])
                # The alert run this materialization triggered, for the breakdown.
                wait_drained(instance, slack, procs, [record.run_id], f"{day}")
                alert = alert_runs_for(instance, record.run_id)
                if alert:
                    result["segments"], result["timeline"] = breakdown(t0, t1, run_timeline(instance, alert[0].dagster_run.run_id))
                results.append(result)
                load = "/".join(f"{x:.1f}" for x in os.getloadavg())
                print(f"run {n}: {day} ({name}): {new} new anomalies; t1 - t0 = {t1 - t0:.1f} s  "
                      f"(load average {load} on {os.cpu_count()} cores)\n        first post: {result['text']}", flush=True)
                if "timeline" in result:
                    print(f"        after t0: {result['timeline']}", flush=True)
                    for label, seconds in result["segments"]:
                        print(f"        {fmt(seconds)} s  {label}", flush=True)
                done_until = day
        finished = True
    except KeyboardInterrupt:
        print("interrupted: stopping the servers", file=sys.stderr, flush=True)
        return 130
    finally:
        if procs is not None:
            procs.stop()
        if finished and not (args.keep or args.workdir):
            shutil.rmtree(work, ignore_errors=True)
        elif not finished:
            print(f"work folder kept for its logs: {work}", file=sys.stderr, flush=True)

    latencies = [r["latency"] for r in results if r["latency"] is not None]
    print()
    print(f"alert latency, anomalies materialization -> Slack post ({SENSOR} minimum_interval_seconds={interval}):")
    for r in results:
        value = "no post" if r["latency"] is None else f"{r['latency']:5.1f} s"
        print(f"  {r['day']} {r['name']:<16} {value}")
    if latencies:
        median, worst = statistics.median(latencies), max(latencies)
        verdict = "meets" if worst <= args.target and len(latencies) == len(results) else "MISSES"
        print(f"  median {median:.1f} s, max {worst:.1f} s over {len(latencies)} run(s): "
              f"{verdict} the <= {args.target:.0f} s target")
    else:
        print("  no post arrived: MISSES the target")
    return 0 if latencies and max(latencies) <= args.target and len(latencies) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
