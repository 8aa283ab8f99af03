"""Configuration from the environment."""

import pytest

from finops_pipeline.settings import load_settings


def test_defaults_live_under_the_data_dir(tmp_path):
    s = load_settings({"FINOPS_DATA_DIR": str(tmp_path)})
    assert s.duckdb_path == tmp_path / "finops.duckdb" and s.outbox_dir == tmp_path / "outbox"
    assert (s.source, s.start_date, s.slack_api_url) == ("demo", "2025-01-01", None)


def test_sources_are_a_comma_separated_list_and_unknown_ones_are_named(tmp_path):
    assert load_settings({"FINOPS_SOURCE": " Demo, focus "}).source == "demo,focus"
    with pytest.raises(ValueError, match="unknown source\\(s\\) cur.*use one or more of demo, focus"):
        load_settings({"FINOPS_SOURCE": "demo,cur"})
    with pytest.raises(ValueError, match="FINOPS_START_DATE='yesterday' is not an ISO date"):
        load_settings({"FINOPS_START_DATE": "yesterday"})
