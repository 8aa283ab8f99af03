"""The Incident type against what is already stored: ledger rows written before it existed load,
re-serialise to the same JSON, and fingerprint like the same incident rebuilt from the tables, so
no sent alert is seen as changed; and the LLM reply models keep OpenAI's strict-schema contract."""

from __future__ import annotations

import dataclasses
import json

import duckdb
import pandas as pd
import pytest

from finops_pipeline.alerting.incident import Incident, incidents_from_rows
from finops_pipeline.alerting.ledger import (
    fingerprint,
    incident_rows,
    pending_incidents,
    pending_revisions,
    record_sent,
)
from finops_pipeline.alerting.llm import IncidentAnalysis, RunSummary
from finops_pipeline.detection.incidents import assign_incidents, summarize
from finops_pipeline.warehouse import replace_window
from finops_pipeline_tests.conftest import fresh_warehouse

# Rows of `alert_ledger.announced` as record_sent wrote them before the Incident type (json.dumps of
# the facts dict of each incident of _anomalies()), with the fingerprint that code computed.
STORED = {
    "a1": (
        '{"incident_id": "a1", "series_key": "sub_account_service:AWS/098765432109/EC2", "start": "2025-07-19", '
        '"latest": "2025-07-19", "span": ["2025-07-19T00:00:00+00:00", "2025-07-19T00:00:00+00:00"], "periods": 1, '
        '"total_excess_usd": 2617.5, "status": "open", "feedback": null, "anomaly_id": "a1", "day": "2025-07-19", '
        '"period": "2025-07-19", "partition": "2025-07-19", "severity": "critical", "direction": "spike", '
        '"series_level": "sub_account_service", "provider": "AWS", "sub_account": "dev-sandbox", '
        '"sub_account_id": "098765432109", "service": "Amazon Elastic Compute Cloud", "team": "<!channel>", '
        '"actual_usd": 2711.4, "expected_usd": 93.9, "band_usd": [60.0, 139.17], "impact_usd": 2617.5, '
        '"deviation_pct": 2787.5, "top_contributors": [{"dimension": "resource", "name": "i-0abc", "actual": 2650.0, '
        '"expected": 40.0, "delta": 2610.0}], "detectors": "prophet"}',
        '{"actual_usd": 2711.4, "band_usd": [60.0, 139.17], "direction": "spike", "expected_usd": 93.9, "feedback": null, '
        '"impact_usd": 2617.5, "latest": "2025-07-19", "periods": 1, "severity": "critical", "start": "2025-07-19", '
        '"status": "open", "top_contributors": [{"actual": 2650.0, "delta": 2610.0, "dimension": "resource", '
        '"expected": 40.0, "name": "i-0abc"}], "total_excess_usd": 2617.5}',
    ),
    "a2": (
        '{"incident_id": "a2", "series_key": "sub_account_service:AWS/098765432109/S3", "start": "2025-07-20", '
        '"latest": "2025-07-20", "span": ["2025-07-20T00:00:00+00:00", "2025-07-20T00:00:00+00:00"], "periods": 1, '
        '"total_excess_usd": 472.17, "status": "open", "feedback": "expected", "anomaly_id": "a2", "day": "2025-07-20", '
        '"period": "2025-07-20", "partition": "2025-07-20", "severity": "warning", "direction": "spike", '
        '"series_level": "sub_account_service", "provider": "AWS", "sub_account": "dev-sandbox", '
        '"sub_account_id": "098765432109", "service": "<https://evil.example|click here>", "team": "data", '
        '"actual_usd": 568.68, "expected_usd": 96.51, "band_usd": [60.0, 139.17], "impact_usd": 472.17, '
        '"deviation_pct": 489.2, "top_contributors": [], "detectors": "prophet"}',
        '{"actual_usd": 568.68, "band_usd": [60.0, 139.17], "direction": "spike", "expected_usd": 96.51, '
        '"feedback": "expected", "impact_usd": 472.17, "latest": "2025-07-20", "periods": 1, "severity": "warning", '
        '"start": "2025-07-20", "status": "open", "top_contributors": [], "total_excess_usd": 472.17}',
    ),
    "h1": (  # hourly, two periods, resolved; the total series, whose missing names DuckDB returned as NaN
        '{"incident_id": "h1", "series_key": "total", "start": "2025-07-20 14:00 UTC", "latest": "2025-07-20 15:00 UTC", '
        '"span": ["2025-07-20T14:00:00+00:00", "2025-07-20T15:00:00+00:00"], "periods": 2, "total_excess_usd": -100.57, '
        '"status": "resolved", "feedback": null, "anomaly_id": "h2", "day": "2025-07-20", "period": "2025-07-20 15:00 UTC", '
        '"partition": "2025-07-20-15:00", "severity": "warning", "direction": "drop", "series_level": "total", '
        '"provider": NaN, "sub_account": NaN, "sub_account_id": NaN, "service": NaN, "team": NaN, "actual_usd": 40.333, '
        '"expected_usd": 101.0, "band_usd": [80.0, 120.5], "impact_usd": -60.667, "deviation_pct": -60.07, '
        '"top_contributors": [{"dimension": "sub_account \\u00d7 service", "name": "AWS/1/EC2", "actual": 1.5, '
        '"expected": 40.25, "delta": -38.75}], "detectors": "prophet,level_shift"}',
        '{"actual_usd": 40.33, "band_usd": [80.0, 120.5], "direction": "drop", "expected_usd": 101.0, "feedback": null, '
        '"impact_usd": -60.67, "latest": "2025-07-20 15:00 UTC", "periods": 2, "severity": "warning", '
        '"start": "2025-07-20 14:00 UTC", "status": "resolved", "top_contributors": [{"actual": 1.5, "delta": -38.75, '
        '"dimension": "sub_account \\u00d7 service", "expected": 40.25, "name": "AWS/1/EC2"}], "total_excess_usd": -100.57}',
    ),
}


def _anomalies() -> pd.DataFrame:
    base = {"granularity": "daily", "series_level": "sub_account_service", "provider": "AWS", "sub_account_id": "098765432109",
            "sub_account_name": "dev-sandbox", "direction": "spike", "lower_bound": 60.0, "upper_bound": 139.17,
            "severity": "critical", "detectors": "prophet", "status": None}
    total = {"granularity": "hourly", "series_level": "total", "series_key": "total", "provider": None, "sub_account_id": None,
             "sub_account_name": None, "service_name": None, "team": None, "direction": "drop", "lower_bound": 80.0,
             "upper_bound": 120.5, "severity": "warning", "detectors": "prophet,level_shift", "status": None,
             "top_contributors": json.dumps([{"dimension": "sub_account × service", "name": "AWS/1/EC2", "actual": 1.5,
                                              "expected": 40.25, "delta": -38.75}])}
    return pd.DataFrame([
        {**base, "anomaly_id": "a1", "series_key": "sub_account_service:AWS/098765432109/EC2",
         "period_start": pd.Timestamp("2025-07-19", tz="UTC"), "service_name": "Amazon Elastic Compute Cloud",
         "team": "<!channel>", "actual_cost": 2711.4, "expected_cost": 93.9, "impact_usd": 2617.5, "deviation_pct": 2787.5,
         "top_contributors": json.dumps([{"dimension": "resource", "name": "i-0abc", "actual": 2650.0, "expected": 40.0,
                                          "delta": 2610.0}])},
        {**base, "anomaly_id": "a2", "series_key": "sub_account_service:AWS/098765432109/S3",
         "period_start": pd.Timestamp("2025-07-20", tz="UTC"), "severity": "warning", "status": "expected",
         "service_name": "<https://evil.example|click here>", "team": "data", "actual_cost": 568.68,
         "expected_cost": 96.51, "impact_usd": 472.17, "deviation_pct": 489.2, "top_contributors": "[]"},
        {**total, "anomaly_id": "h1", "period_start": pd.Timestamp("2025-07-20 14:00", tz="UTC"), "actual_cost": 60.1,
         "expected_cost": 100.0, "impact_usd": -39.9, "deviation_pct": -39.9},
        {**total, "anomaly_id": "h2", "period_start": pd.Timestamp("2025-07-20 15:00", tz="UTC"), "actual_cost": 40.333,
         "expected_cost": 101.0, "impact_usd": -60.667, "deviation_pct": -60.07},
    ])


def written_back(announced: str) -> str:
    """A stored record as today's code writes it back: a missing name is null, not NaN (which
    JSON does not have), and a record from before data gaps and calibration is a cost incident
    without a profile or usual range; nothing else changes, and none of these is in the fingerprint."""
    record = json.loads(announced)
    names = ("provider", "sub_account", "sub_account_id", "service", "team")
    return json.dumps({**record, **{k: None for k in names if record[k] != record[k]}, "signal": "cost",
                       "profile": None, "usual_usd": None}, default=str)


def rebuilt_today(announced: str) -> str:
    """A stored record as today's code rebuilds it: partitions are days, whatever the grain (an
    hourly record stored before named the hour's partition)."""
    record = json.loads(written_back(announced))
    return json.dumps({**record, "partition": record["day"]}, default=str)


@pytest.fixture
def con():
    """The anomalies and incidents tables as detection leaves them for _anomalies()."""
    with fresh_warehouse() as con:
        frame = _anomalies().assign(detected_at=pd.Timestamp("2025-07-21", tz="UTC"), robust_z=None, root_cause=None,
                                    explained_by=None, profile=None, alert_lower=None, alert_upper=None, span_usual=None,
                                    api_key_id=None, findings=None)
        frame["incident_id"] = assign_incidents(frame)
        replace_window(con, "anomalies", frame, "TRUE", [])
        last_scored = pd.Series({"total": pd.Timestamp("2025-07-20 16:00", tz="UTC")})
        replace_window(con, "incidents", summarize(frame, last_scored), "TRUE", [])
        yield con


def test_a_stored_record_loads_and_writes_back_the_same_json_and_fingerprint(con):
    rebuilt = {i.incident_id: i for i in incidents_from_rows(incident_rows(con))}
    assert sorted(rebuilt) == sorted(STORED)
    for incident_id, (announced, stored_fingerprint) in STORED.items():
        loaded = Incident.from_record(json.loads(announced))
        assert json.dumps(loaded.to_record(), default=str) == written_back(announced)  # the stored format
        assert json.dumps(rebuilt[incident_id].to_record(), default=str) == rebuilt_today(announced)
        assert fingerprint(loaded) == fingerprint(rebuilt[incident_id]) == stored_fingerprint


def test_alerts_sent_before_the_incident_type_are_not_seen_as_changed(con):
    now = pd.Timestamp("2025-07-21", tz="UTC")
    for incident_id, (announced, _) in STORED.items():
        con.execute("""INSERT INTO alert_ledger (incident_id, destination, channel, message_ref, sent_at, status, revision,
                                                 announced, updated_at) VALUES (?, 'slack', 'C0', ?, ?, 'sent', 0, ?, ?)""",
                    [incident_id, f"ts-{incident_id}", now, announced, now])
    assert pending_revisions(con) == []
    assert pending_incidents(con, "info") == []
    # The same incidents written by the new code read back alike.
    con.execute("DELETE FROM alert_ledger")
    for incident in incidents_from_rows(incident_rows(con)):
        record_sent(con, incident, None, "slack", "C0", f"ts-{incident.incident_id}")
    stored = con.execute("SELECT announced FROM alert_ledger ORDER BY incident_id").fetchall()
    assert [a for (a,) in stored] == [rebuilt_today(STORED[k][0]) for k in sorted(STORED)]
    assert pending_revisions(con) == []


def test_a_record_from_before_incidents_loads_as_one_period_overlapping_nothing():
    legacy = {"anomaly_id": "a9", "day": "2025-07-01", "severity": "warning", "direction": "spike",
              "series_level": "service", "provider": "AWS", "sub_account": None, "sub_account_id": None,
              "service": "Amazon S3", "team": None, "actual_usd": 150.0, "expected_usd": 100.0,
              "band_usd": [80.0, 120.0], "impact_usd": 50.0, "deviation_pct": 50.0, "top_contributors": []}
    incident = Incident.from_record(legacy)
    assert (incident.incident_id, incident.periods, incident.status, incident.start_label, incident.feedback) == \
        ("a9", 1, "open", "2025-07-01", None)
    assert incident.total_excess_usd == 50.0 and incident.band.upper == 120.0
    same_day = dataclasses.replace(incident, incident_id="a10", series_key="service:AWS/Amazon S3")
    assert not same_day.overlaps(incident)  # its series is unknown: no incident takes its alert over


@pytest.mark.parametrize("model", [IncidentAnalysis, RunSummary])
def test_the_reply_schemas_meet_openai_strict_structured_outputs(model):
    schema = model.model_json_schema()
    objects = [schema, *schema.get("$defs", {}).values()]
    for node in objects:
        assert node["type"] == "object" and node["additionalProperties"] is False
        assert set(node["required"]) == set(node["properties"])  # strict mode: every property required
