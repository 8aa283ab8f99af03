"""What the benchmarks and the end-to-end test share: a throwaway Dagster instance, the headless
single-run backfill, the servers as process groups, and GraphQL.

* ``TempInstance``: a DAGSTER_HOME (a copy of the project's ``dagster.yaml``, storage beside it)
  and a data folder under a work folder, and the environment that points a run at them and at one
  code tree (``PYTHONPATH`` and the working directory: an old git worktree runs with the same venv).
* ``backfill`` / ``materialize_command``: ``dagster asset materialize --select '*anomalies'`` (the
  anomalies and everything upstream) over a day or a range, as one run.
* ``Processes``: subprocesses each in its own process group, logging to a file, stopped group by
  group (``stop_process_group``); ``start_servers`` starts ``dagster-webserver`` then
  ``dagster-daemon`` the way ``dagster dev`` runs them.
* ``graphql``, ``http_ok``, ``wait_for_code_location``, ``free_port``, ``tail``.

Failures raise ``HarnessError`` (a RuntimeError) with the tail of the process log that says why.
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
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The venv's dagster CLIs, next to this interpreter (not resolved: a symlinked python still points
# at the venv's bin folder).
BIN = Path(sys.executable).parent
MODULE = "finops_pipeline.definitions"
BACKFILL_SELECTION = "*anomalies"  # the anomalies and everything upstream of them
# Variables that could point a run at another instance, database, model or Slack workspace.
ISOLATED_PREFIXES = ("FINOPS_", "DAGSTER_", "DBT_", "OPENAI_", "SLACK_")
# Dropped even when the caller's settings are inherited: the run's own database, no LLM, no Slack.
NEVER_INHERITED = ("FINOPS_DUCKDB_PATH", "OPENAI_API_KEY", "SLACK_BOT_TOKEN")


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# A temporary instance
# --------------------------------------------------------------------------------------------


def instance_config(code: Path = REPO) -> Path:
    """A code tree's instance config (concurrency pool, run queue)."""
    return code / "dagster_home" / "dagster.yaml"


@dataclass(frozen=True)
class TempInstance:
    """A Dagster instance and a data folder under ``work``: ``work/dagster_home`` (storage in it),
    ``work/data/finops.duckdb``, dbt's per-run artifacts and logs in ``work/dbt_target`` and
    ``work/dbt_logs`` (not in the code tree)."""

    work: Path

    @property
    def dagster_home(self) -> Path:
        return self.work / "dagster_home"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "finops.duckdb"

    def create(self, config: Path | None = None) -> TempInstance:
        """The folders, and ``config`` (default: this checkout's dagster.yaml) as the instance's."""
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(config or instance_config(), self.dagster_home / "dagster.yaml")
        return self

    def env(self, start: date | str, *, code: Path = REPO, inherit_settings: bool = False, **settings: str) -> dict:
        """The environment of a run, a server or the CLI on this instance, importing ``code``
        first. Without ``inherit_settings`` nothing from the caller's FINOPS_, DAGSTER_, DBT_,
        OPENAI_ or SLACK_ variables gets through (a test or benchmark is hermetic: reports use the
        template, alerts go to the outbox unless ``settings`` say otherwise); with it the caller's
        FINOPS_ settings apply (to try a threshold), never its database, LLM key or Slack token."""
        if inherit_settings:
            env = {k: v for k, v in os.environ.items() if k not in NEVER_INHERITED}
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)}
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(p for p in (str(code), env.get("PYTHONPATH")) if p),
            DAGSTER_HOME=str(self.dagster_home),
            FINOPS_DATA_DIR=str(self.data_dir),
            FINOPS_DUCKDB_PATH=str(self.duckdb_path),
            FINOPS_START_DATE=str(start),
            DBT_TARGET_PATH=str(self.work / "dbt_target"),
            DBT_LOG_PATH=str(self.work / "dbt_logs"),
            PYTHONUNBUFFERED="1",
        )
        env.update(settings)
        return env


# --------------------------------------------------------------------------------------------
# The headless backfill
# --------------------------------------------------------------------------------------------


def materialize_command(first: date, last: date, select: str = BACKFILL_SELECTION) -> list[str]:
    """`dagster asset materialize` of ``select`` for the day ``first`` or the days first...last
    (both included): one run, every partitioned asset having a single-run backfill policy."""
    window = ["--partition", first.isoformat()] if first == last else \
        ["--partition-range", f"{first.isoformat()}...{last.isoformat()}"]
    return [str(BIN / "dagster"), "asset", "materialize", "-m", MODULE, "--select", select, *window]


def backfill(env: dict, first: date, last: date, code: Path = REPO) -> float:
    """Run ``materialize_command`` in ``code`` to the end; its wall time in seconds. A failed run
    raises CalledProcessError, after printing the end of the CLI's log."""
    began = time.perf_counter()
    result = subprocess.run(materialize_command(first, last), env=env, cwd=code, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if result.returncode:
        lines = strip_colours(result.stderr.decode(errors="replace")).splitlines()
        print("\n".join(lines[-60:]), file=sys.stderr, flush=True)
        raise subprocess.CalledProcessError(result.returncode, result.args, stderr=result.stderr)
    return time.perf_counter() - began


def backfill_focus(workdir: Path, focus: Path, first: date, last: date, code: Path = REPO,
                   granularity: str = "daily") -> float:
    """The pipeline of the code tree ``code`` backfilled over first...last (both included) on the
    FOCUS exports under ``focus``, at ``granularity``, into an instance and DuckDB under
    ``workdir``: the wall time. The caller's FINOPS_ settings apply (to try a threshold), not its
    database, LLM or Slack."""
    instance = TempInstance(workdir).create(instance_config(code))
    env = instance.env(first, code=code, inherit_settings=True, FINOPS_SOURCE="focus", FINOPS_FOCUS_PATH=str(focus),
                       FINOPS_GRANULARITY=granularity)
    return backfill(env, first, last, code)


def imported_from(env: dict, code: Path) -> Path:
    """Where ``finops_pipeline`` is imported from by a process with ``env`` in ``code``; raises
    HarnessError unless it is ``code`` (a tree without the package, a PYTHONPATH shadowed...)."""
    out = subprocess.run([sys.executable, "-c", "import finops_pipeline; print(finops_pipeline.__file__)"],
                         env=env, cwd=code, capture_output=True, text=True)
    if out.returncode:
        raise HarnessError(f"finops_pipeline does not import in {code}:\n{out.stderr[-2000:]}")
    path = Path(out.stdout.strip().splitlines()[-1]).resolve()
    if not path.is_relative_to(code.resolve()):
        raise HarnessError(f"finops_pipeline imported from {path}, not from {code}")
    return path.parent


# --------------------------------------------------------------------------------------------
# Subprocesses
# --------------------------------------------------------------------------------------------


def strip_colours(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, without Dagster's colour codes."""
    if not path.exists():
        return f"<{path}: not written (process not started)>"
    text = strip_colours(path.read_text(errors="replace")).splitlines()
    return f"----- last {min(lines, len(text))} lines of {path} -----\n" + "\n".join(text[-lines:])


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


class Processes:
    """Every subprocess in its own process group, each logging to ``log_dir/NAME.log``; stop() ends
    each group (SIGTERM, then SIGKILL), daemon before webserver, whatever happened. A context
    manager: leaving it stops them all."""

    def __init__(self, env: dict, log_dir: Path, cwd: Path) -> None:
        self.env, self.log_dir, self.cwd = env, log_dir, cwd
        self.procs: list[tuple[str, subprocess.Popen, object]] = []
        self.names: list[str] = []  # every process ever started, for log_tails

    def start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.log(name), "ab")
        proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # own group, for killpg
        self.procs.append((name, proc, log))
        self.names.append(name)
        return proc

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tails(self, lines: int = 60) -> str:
        return "\n\n".join(tail(self.log(name), lines) for name in dict.fromkeys(self.names))

    def stop(self, name: str | None = None) -> None:
        # Daemon first, so it launches nothing while the webserver goes down.
        order = sorted(self.procs, key=lambda p: {"daemon": 0, "webserver": 2}.get(p[0], 1))
        for entry in order:
            if name is None or entry[0] == name:
                stop_process_group(entry[1])
                entry[2].close()
                self.procs.remove(entry)

    def check_alive(self, *names: str) -> None:
        """Raise if one of ``names`` (default: every process) has exited: a dead server never answers."""
        for name, proc, _ in self.procs:
            if (not names or name in names) and proc.poll() is not None:
                raise HarnessError(f"{name} exited early with code {proc.returncode}\n{tail(self.log(name))}")

    def wait(self, name: str, proc: subprocess.Popen, timeout: float) -> None:
        """Wait for ``proc`` to succeed; raise with its log's tail if it fails or outlives ``timeout``."""
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HarnessError(f"{name} still running after {timeout:.0f}s\n{tail(self.log(name))}") from None
        if rc != 0:
            raise HarnessError(f"{name} failed with code {rc}\n{tail(self.log(name))}")

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    # Bind to port 0 and let the kernel choose; a tiny race before the server binds is acceptable.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------
# HTTP and GraphQL
# --------------------------------------------------------------------------------------------


def http_ok(url: str, timeout: float = 5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # refused / reset while the server starts
        return False


def graphql(url: str, query: str, variables: dict | None = None, timeout: float = 30) -> dict:
    """POST a query to ``url``/graphql; the JSON body (``data`` and/or ``errors``). GraphQL reports
    query errors as JSON even with a 4xx status: the body is read either way."""
    payload = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=payload, headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


# Field names from dagster_graphql/schema in dagster 1.13.
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


def wait_for_code_location(url: str, timeout: float, check_alive=lambda: None) -> list[dict]:
    """Until the webserver answers and every code location is loaded: the location entries. A
    location that failed to load raises at once, with its traceback (it will not fix itself)."""
    deadline = time.monotonic() + timeout
    last_problem = "no answer yet"
    while True:
        check_alive()
        try:
            body = graphql(url, LOCATIONS_QUERY, timeout=10)
            workspace = (body.get("data") or {}).get("workspaceOrError") or {}
            entries = workspace.get("locationEntries") or []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [e for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
                if errors:
                    err = errors[0]["locationOrLoadError"]
                    raise HarnessError(f"code location {errors[0]['name']!r} failed to load: {err['message']}\n"
                                       + "".join(err.get("stack") or []))
                return entries
            last_problem = f"workspace: {workspace or body}"
        except (OSError, ValueError) as exc:  # connection refused, server still starting
            last_problem = repr(exc)
        if time.monotonic() > deadline:
            raise HarnessError(f"code location not ready after {timeout:.0f}s; last: {last_problem}")
        time.sleep(1)


def start_servers(procs: Processes, port: int, timeout: float, wait_for_location: bool = True) -> str:
    """``dagster-webserver`` on ``port``, then ``dagster-daemon``, both on workspace.yaml in
    ``procs.cwd``; the webserver's URL. The daemon starts once the webserver answers (and, with
    ``wait_for_location``, once the code location is loaded): on a fresh DAGSTER_HOME both would
    create the SQLite storage at once and one dies on "table alembic_version already exists"; the
    webserver answers /server_info only once its instance (and storage) is up."""
    url = f"http://127.0.0.1:{port}"
    procs.start("webserver", [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                              "-p", str(port)])
    deadline = time.monotonic() + timeout
    while not http_ok(f"{url}/server_info"):
        procs.check_alive("webserver")
        if time.monotonic() > deadline:
            raise HarnessError(f"webserver did not answer /server_info within {timeout:.0f}s\n"
                               f"{tail(procs.log('webserver'))}")
        time.sleep(0.5)
    if wait_for_location:
        wait_for_code_location(url, max(deadline - time.monotonic(), 0), lambda: procs.check_alive("webserver"))
    procs.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"])
    return url
