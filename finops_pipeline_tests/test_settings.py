"""Configuration from the environment."""

from datetime import date

import pytest

from finops_pipeline.settings import load_settings


def test_defaults_live_under_the_data_dir(tmp_path):
    s = load_settings({"FINOPS_DATA_DIR": str(tmp_path)})
    assert s.duckdb_path == tmp_path / "finops.duckdb" and s.outbox_dir == tmp_path / "outbox"
    assert (s.sources, s.start_date, s.slack_api_url) == (("demo",), date(2025, 1, 1), None)


def test_sources_are_a_comma_separated_list_and_unknown_ones_are_named(tmp_path):
    assert load_settings({"FINOPS_SOURCE": " Demo, focus "}).source == "demo,focus"
    with pytest.raises(ValueError, match="unknown source\\(s\\) cur.*use one or more of aws_cost_explorer, demo, focus"):
        load_settings({"FINOPS_SOURCE": "demo,cur"})
    with pytest.raises(ValueError, match="FINOPS_START_DATE='yesterday' is not an ISO date"):
        load_settings({"FINOPS_START_DATE": "yesterday"})


def test_an_unusable_value_names_its_variable():
    with pytest.raises(ValueError, match="FINOPS_LLM_TIMEOUT_SECONDS='abc' is not a number"):
        load_settings({"FINOPS_LLM_TIMEOUT_SECONDS": "abc"})
    with pytest.raises(ValueError, match="FINOPS_GRANULARITY='weekly': use daily or hourly"):
        load_settings({"FINOPS_GRANULARITY": "weekly"})


def test_secret_values_stay_out_of_the_settings():
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-secret", "FINOPS_SLACK_WEBHOOK_URL": "https://hooks.example/secret"})
    assert s.secrets_set == {"SLACK_BOT_TOKEN", "FINOPS_SLACK_WEBHOOK_URL"}
    assert "xoxb-secret" not in s.model_dump_json() and "hooks.example" not in s.model_dump_json()
