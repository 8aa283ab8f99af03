"""Every series level has its own wording, and no message shows "nan" or "None": an incident of
each level, with the names a bill may lack missing (as DuckDB returns them: NaN), rendered
through every format an alert, a report or a thread reply takes, and again after the ledger's
JSON round trip."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from finops_pipeline.alerting.facts import figures_table
from finops_pipeline.alerting.incident import Incident
from finops_pipeline.alerting.messages import markdown_message, slack_message, thread_reply
from finops_pipeline.alerting.report import template_analysis, template_summary

NAN = math.nan
# Level, then the names its series has (NaN where the level has none or the bill gave none),
# and for an API key its id.
LEVELS = {
    "total": (NAN, NAN, NAN, NAN, NAN),
    "provider": ("AWS", NAN, NAN, NAN, NAN),
    "sub_account": ("AWS", NAN, "123456789012", NAN, NAN),  # an account without a name
    "service": ("Google Cloud", NAN, NAN, "BigQuery", NAN),
    "team": (NAN, NAN, NAN, NAN, "ml-platform"),
    "sub_account_service": ("Microsoft", NAN, NAN, "Virtual Machines", NAN),  # neither name nor id
    "api_key": ("OpenAI", NAN, "proj_chat", NAN, "assistants", "key_web"),
}
WORDING = {
    "total": "Total usage (all accounts)",
    "provider": "All AWS usage",
    "sub_account": "Account 123456789012 (AWS, all services)",
    "service": "BigQuery (Google Cloud, all accounts)",
    "team": "Team ml-platform (all accounts)",
    "sub_account_service": "Virtual Machines in unnamed account (Microsoft)",
    "api_key": "API key key_web in proj_chat (OpenAI)",
}
MISSING = re.compile(r"\bnan\b|\bNone\b|\bnull\b", re.IGNORECASE)


def _incident(level: str) -> Incident:
    provider, account, account_id, service, team, *key = LEVELS[level]
    row = pd.DataFrame([{
        "anomaly_id": f"a-{level}", "series_key": f"{level}:x", "granularity": "daily",
        "period_start": pd.Timestamp("2025-07-19", tz="UTC"), "severity": "warning", "direction": "spike",
        "series_level": level, "provider": provider, "sub_account_name": account, "sub_account_id": account_id,
        "service_name": service, "team": team, "api_key_id": key[0] if key else NAN, "actual_cost": 840.0, "expected_cost": 120.0, "lower_bound": 90.0,
        "upper_bound": 150.0, "impact_usd": 720.0, "deviation_pct": 600.0, "detectors": "prophet",
        "top_contributors": json.dumps([{"dimension": "resource", "name": "i-0abc", "actual": 800.0, "expected": 80.0,
                                         "delta": 720.0}]),
    }])
    return Incident.from_row(next(row.itertuples(index=False)))


def _rendered(incident: Incident) -> dict[str, str]:
    analysis = template_analysis(incident, None, "no LLM configured")
    return {
        "slack": json.dumps(slack_message(incident, "http://localhost:3000", "report-1", note="Escalated.",
                                          analysis=analysis.markdown)),
        "markdown": markdown_message(incident, "http://localhost:3000", "report-1", note="Escalated."),
        "thread": json.dumps(thread_reply(incident, "Escalated.")),
        "report": analysis.markdown,
        "summary": template_summary([incident], "no LLM configured").markdown,
        "figures": figures_table([incident]),
    }


@pytest.mark.parametrize("level", list(LEVELS))
def test_each_level_reads_as_itself_and_never_as_nan_or_none(level):
    incident = _incident(level)
    assert incident.series_description == WORDING[level]
    stored = Incident.from_record(json.loads(json.dumps(incident.to_record(), default=str)))
    for name, text in [*_rendered(incident).items(), *(("stored " + k, v) for k, v in _rendered(stored).items())]:
        assert not MISSING.search(text), f"{level} in {name}: {MISSING.search(text).group()!r} in {text[:300]!r}"
        assert WORDING[level] in text or name.endswith("thread"), f"{level} in {name} lacks its wording"


def test_a_record_holding_nan_names_reads_as_missing():
    """Records written before names were cleaned hold NaN (json.dumps writes it, json.loads reads it)."""
    record = _incident("team").to_record() | {"provider": NAN, "sub_account": NAN, "service": NAN}
    stored = Incident.from_record(json.loads(json.dumps(record, default=str)))
    assert (stored.provider, stored.sub_account, stored.service, stored.team) == (None, None, None, "ml-platform")


def test_an_incident_of_several_periods_says_what_it_cost_in_all():
    """It may page on its total rather than on its peak day: the headline gives both."""
    import dataclasses

    incident = dataclasses.replace(_incident("sub_account_service"), periods=5, total_excess_usd=620.0,
                                   start_label="2025-07-15")
    assert "+$620.00 over 5 periods since 2025-07-15" in slack_message(incident, "http://localhost:3000", None)["text"]
    assert "5 periods from 2025-07-15 to 2025-07-19, +$620.00 against expected in all" in \
        markdown_message(incident, "http://localhost:3000", None)
    assert "over 1 periods" not in slack_message(_incident("team"), "http://localhost:3000", None)["text"]


@pytest.mark.parametrize("level", ["provider", "sub_account", "sub_account_service"])
def test_a_data_gap_says_what_stopped_arriving_and_goes_to_the_pipeline_owner(level):
    import dataclasses

    from finops_pipeline.alerting.routing import parse_routes

    incident = dataclasses.replace(_incident(level), signal="data_gap", direction="drop", periods=3,
                                   total_excess_usd=-360.0, start_label="2025-07-17")
    slack = slack_message(incident, "http://localhost:3000", None)
    assert slack["text"].startswith(f"WARNING: DATA GAP: no line items for {WORDING[level]} since 2025-07-17 "
                                    f"(3 periods, $360.00 expected in that time)")
    rest = "the other providers' bills are arriving" if level == "provider" else f"the rest of {LEVELS[level][0]}'s bill is arriving"
    assert slack["text"].endswith(rest)
    assert "data gap" in slack["blocks"][0]["text"]["text"] and "cost anomaly" not in json.dumps(slack)
    assert f"**Data gap**: no line items for {WORDING[level]}" in markdown_message(incident, "http://localhost:3000", None)
    for text in _rendered(incident).values():
        assert not MISSING.search(text)
    stored = Incident.from_record(json.loads(json.dumps(incident.to_record(), default=str)))
    assert stored.is_data_gap
    routes = parse_routes("ml-platform=#ml,pipeline=#finops-pipeline", "#finops-alerts")
    assert routes.channel_for(incident.team, incident.signal) == "#finops-pipeline"
    assert routes.channel_for("ml-platform") == "#ml"
    assert parse_routes(None, "#finops-alerts").channel_for(None, "data_gap") == "#finops-alerts"


def test_an_alert_says_the_series_usual_range_and_profile():
    import dataclasses

    from finops_pipeline.alerting.incident import Band

    incident = dataclasses.replace(_incident("sub_account_service"), profile="bursty", usual=Band(40.0, 610.5))
    text = json.dumps(slack_message(incident, "http://localhost:3000", None), ensure_ascii=False)
    assert "$40.00 – $610.50 for a bursty series, from its own forecast errors" in text
    assert "Usual range: $40.00 – $610.50" in markdown_message(incident, "http://localhost:3000", None)
    stored = Incident.from_record(json.loads(json.dumps(incident.to_record(), default=str)))
    assert (stored.profile, stored.usual) == ("bursty", Band(40.0, 610.5))
    assert "Usual range" not in json.dumps(slack_message(_incident("total"), "http://localhost:3000", None))


def test_the_template_report_tells_a_data_gap_from_a_drop():
    import dataclasses

    gap = dataclasses.replace(_incident("sub_account"), signal="data_gap", direction="drop", periods=2,
                              total_excess_usd=-240.0, start_label="2025-07-18")
    text = template_analysis(gap, None, "no LLM configured").markdown
    assert "Data gap: no line items for Account 123456789012 (AWS, all services) since 2025-07-18" in text
    assert "export or integration" in text and not MISSING.search(text)
