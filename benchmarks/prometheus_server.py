"""A local Prometheus HTTP API (``GET /api/v1/query_range``) over samples given in Python, for the
Prometheus source's tests and the demo's benchmarks: instant selectors with ``=`` label matchers
(``DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-1"}``), evaluated at every step as Prometheus does (the
latest sample at or before the step, if at most five minutes old), at most 11,000 points a series,
answers and errors in Prometheus's JSON envelope, bearer or basic auth when set."""

from __future__ import annotations

import base64
import re
import threading

import numpy as np

from benchmarks.protocol_servers import _Server

LOOKBACK_SECONDS = 300  # Prometheus's staleness window
MAX_POINTS = 11_000
_SELECTOR = re.compile(r'^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{(.*)\})?\s*$')
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class PrometheusServer(_Server):
    """``series``: (labels with ``__name__``, unix times, values) triples. ``token`` or
    ``basic`` (user, password): the credentials it demands. ``script``: answers to give the first
    requests instead, ``(status, headers[, body])`` each."""

    def __init__(self, series: list[tuple[dict, np.ndarray, np.ndarray]] | None = None, token: str | None = None,
                 basic: tuple[str, str] | None = None, script: list | None = None) -> None:
        super().__init__()
        self.series = [(dict(labels), np.asarray(t, dtype=float), np.asarray(v, dtype=float))
                       for labels, t, v in (series or [])]
        self.token, self.basic = token, basic
        self.script = list(script or [])
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queries(self) -> list[str]:
        return [r["query"]["query"][0] for r in self.requests if "query" in r["query"]]

    def _authorized(self, headers: dict) -> bool:
        given = headers.get("authorization", "")
        if self.token:
            return given == f"Bearer {self.token}"
        if self.basic:
            return given == "Basic " + base64.b64encode(f"{self.basic[0]}:{self.basic[1]}".encode()).decode()
        return True

    def respond(self, record):
        with self._lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            status, headers, *body = scripted
            return status, dict(headers), body[0] if body else {"status": "error", "errorType": "unavailable",
                                                                "error": "scripted"}
        if not self._authorized(record["headers"]):
            return 401, {}, b"Unauthorized\n"
        if record["path"] != "/api/v1/query_range":
            return 404, {}, b"404 page not found\n"
        q = {k: v[0] for k, v in record["query"].items()}
        try:
            start, end = float(q["start"]), float(q["end"])
            step = float(q["step"].removesuffix("s"))
        except (KeyError, ValueError):
            return 400, {}, _error("bad_data", "invalid parameter 'start', 'end' or 'step'")
        if end < start or step <= 0:
            return 400, {}, _error("bad_data", "end timestamp must not be before start time, step must be positive")
        if (end - start) / step + 1 > MAX_POINTS:
            return 400, {}, _error("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                                               "Try decreasing the query resolution (?step=XX)")
        match = _SELECTOR.match(q.get("query", ""))
        if not match:
            return 400, {}, _error("bad_data", f"1:1: parse error: unsupported query {q.get('query')!r}")
        name, matchers = match.group(1), dict(_MATCHER.findall(match.group(2) or ""))
        steps = np.arange(start, end + step / 2, step)
        result = []
        for labels, times, values in self.series:
            if labels.get("__name__") != name or any(labels.get(k) != v for k, v in matchers.items()):
                continue
            i = np.searchsorted(times, steps, side="right") - 1
            ok = (i >= 0) & (steps - times[np.clip(i, 0, None)] <= LOOKBACK_SECONDS)
            if ok.any():
                result.append({"metric": labels, "values": [[float(t), repr(float(values[k]))]
                                                            for t, k in zip(steps[ok], i[ok])]})
        return 200, {}, {"status": "success", "data": {"resultType": "matrix", "result": result}}


def _error(kind: str, message: str) -> dict:
    return {"status": "error", "errorType": kind, "error": message}
