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
    with pytest.raises(ValueError, match="unknown source\\(s\\) cur.*use one or more of anthropic, aws_cost_explorer, demo, focus, openai"):
        load_settings({"FINOPS_SOURCE": "demo,cur"})
    with pytest.raises(ValueError, match="FINOPS_START_DATE='yesterday' is not an ISO date"):
        load_settings({"FINOPS_START_DATE": "yesterday"})


def test_secret_values_stay_out_of_the_settings():
    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-secret", "FINOPS_SLACK_WEBHOOK_URL": "https://hooks.example/secret"})
    assert s.secrets_set == {"SLACK_BOT_TOKEN", "FINOPS_SLACK_WEBHOOK_URL"}
    assert "xoxb-secret" not in s.model_dump_json() and "hooks.example" not in s.model_dump_json()


@pytest.mark.parametrize("variable, value, says", [
    ("FINOPS_LLM_TIMEOUT_SECONDS", "abc", "use a number of seconds above 0"),
    ("FINOPS_LLM_TIMEOUT_SECONDS", "-5", "use a number of seconds above 0"),
    ("FINOPS_LLM_PRICING", "cheap", "'prompt,completion' USD per 1M tokens"),
    ("FINOPS_SLACK_ROUTES", "data", "team=channel pairs"),
    ("FINOPS_AI_TEAMS", "proj_a,proj_b=ml", "'proj_a' is not project=team"),
    ("FINOPS_GRANULARITY", "weekly", "use daily or hourly"),
])
@pytest.mark.fault_probe
def test_every_bad_value_names_its_variable_and_what_it_accepts(variable, value, says):
    from finops_pipeline.errors import SettingsError

    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    assert str(caught.value).startswith(variable) and says in str(caught.value)


@pytest.mark.fault_probe
def test_a_focus_path_that_matches_nothing_fails_at_load_showing_the_path(tmp_path):
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.errors import SettingsError

    missing = tmp_path / "exports" / "**" / "*.parquet"
    with pytest.raises(SettingsError, match=r"FINOPS_FOCUS_PATH='.*\*\.parquet': no such folder, and no file matches it"):
        build_definitions(load_settings({"FINOPS_SOURCE": "focus", "FINOPS_FOCUS_PATH": str(missing)}))


@pytest.mark.fault_probe
def test_the_cli_reports_a_configuration_error_in_one_line_and_fails(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    dagster = Path(sys.executable).parent / "dagster"
    env = {**os.environ, "FINOPS_LLM_TIMEOUT_SECONDS": "abc", "DAGSTER_HOME": str(tmp_path), "FINOPS_DATA_DIR": str(tmp_path)}
    done = subprocess.run([str(dagster), "asset", "materialize", "-m", "finops_pipeline.definitions", "--select",
                           "raw_billing", "--partition", "2025-03-01"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if "FINOPS_" in line]
    assert ours == ["finops-pipeline: configuration error: FINOPS_LLM_TIMEOUT_SECONDS='abc': use a number of seconds "
                    "above 0 (default 60)"]
    assert "Traceback" not in done.stderr
