"""The definitions keep their shape: built from settings alone, daily and hourly side by side in
one process, with every stage's assets, checks, jobs, schedules and sensors. Fast: nothing runs."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import pytest
from dagster import AssetKey, DailyPartitionsDefinition, Definitions, build_schedule_context

from finops_pipeline.definitions import build_definitions
from finops_pipeline.settings import load_settings
from finops_pipeline.sources import registry

PARTITIONED = {"raw_billing", "stg_focus__billing", "daily_costs", "team_costs", "daily_ai_usage", "gpu_hours",
               "daily_cost_series", "sku_first_seen", "cost_forecasts", "anomalies"}
UNPARTITIONED = {"incidents", "detection_quality", "anomaly_report", "anomaly_alerts", "cost_digest"}
GROUPS = {"raw_billing": "ingest", "stg_focus__billing": "transform", "daily_costs": "transform",
          "team_costs": "transform", "daily_ai_usage": "transform", "gpu_hours": "transform",
          "daily_cost_series": "transform", "sku_first_seen": "transform",
          "cost_forecasts": "detect", "anomalies": "detect", "incidents": "detect", "detection_quality": "detect",
          "anomaly_report": "alerting", "anomaly_alerts": "alerting", "cost_digest": "alerting"}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    data = tmp_path_factory.mktemp("defs")
    return {grain: build_definitions(load_settings({"FINOPS_GRANULARITY": grain, "FINOPS_DATA_DIR": str(data / grain),
                                                    "FINOPS_START_DATE": "2025-03-01"}))
            for grain in ("daily", "hourly")}


def test_daily_and_hourly_definitions_load_side_by_side(both):
    for defs in both.values():
        Definitions.validate_loadable(defs)
    daily, hourly = (both[g].resolve_asset_graph() for g in ("daily", "hourly"))
    keys = {k.to_user_string() for k in daily.get_all_asset_keys()}
    assert keys == PARTITIONED | UNPARTITIONED
    assert {k.to_user_string() for k in hourly.get_all_asset_keys()} == keys | {"hourly_costs", "hourly_cost_series", "hourly_ai_usage"}
    for key, group in GROUPS.items():
        assert daily.get(AssetKey(key)).group_name == group
    # Both grains keep daily partitions from the start date; by the hour, today's exists too.
    for grain, graph in (("daily", daily), ("hourly", hourly)):
        for key in PARTITIONED:
            partitions = graph.get(AssetKey(key)).partitions_def
            assert isinstance(partitions, DailyPartitionsDefinition), (grain, key)
            assert partitions.start.date().isoformat() == "2025-03-01"
        assert all(graph.get(AssetKey(k)).partitions_def is None for k in UNPARTITIONED)
    assert hourly.get(AssetKey("anomalies")).partitions_def.end_offset == 1
    assert daily.get(AssetKey("anomalies")).partitions_def.end_offset == 0


def test_every_asset_is_owned_and_every_step_takes_the_warehouse_slot(both):
    graph = both["daily"].resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:finops"] and "duckdb" in node.kinds, key
    ops = {a.node_def.name: a.node_def.pool for a in both["daily"].assets if hasattr(a, "node_def")}
    assert set(ops.values()) == {"duckdb"}, ops


def test_jobs_schedules_sensors_and_checks(both):
    for grain, defs in both.items():
        assert {j.name for j in defs.resolve_all_job_defs()} >= {
            f"{grain}_cost_pipeline", "anomaly_alert_job", "cost_digest_job", "incident_feedback_job"}
        assert {s.name for s in defs.schedules} == {f"{grain}_cost_pipeline_schedule", "daily_digest_schedule"}
        assert {s.name for s in defs.sensors} == {"anomalies_sensor", "focus_restatements_sensor", "dead_runs_sensor"}
        checks = {c.name for c in defs.resolve_asset_graph().asset_check_keys}
        assert {"usage_is_not_negative", "forecast_bands_are_ordered", "anomalies_have_forecasts"} <= checks
        assert any(c.startswith("not_null_") for c in checks)  # dbt tests as asset checks


@pytest.mark.parametrize("grain, fired, partition", [
    ("daily", datetime(2025, 5, 13, 6, 0), "2025-05-12"),  # yesterday, at 06:00
    ("hourly", datetime(2025, 5, 13, 14, 30), "2025-05-13"),  # today, one more hour in it
    ("hourly", datetime(2025, 5, 13, 0, 30), "2025-05-12"),  # the last hour of yesterday
])
def test_the_schedule_runs_the_day_of_the_period_that_just_ended(both, grain, fired, partition):
    defs = both[grain]
    schedule = defs.get_schedule_def(f"{grain}_cost_pipeline_schedule")
    with build_schedule_context(scheduled_execution_time=fired.replace(tzinfo=timezone.utc),
                                repository_def=defs.get_repository_def()) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == partition


def test_a_source_installed_by_another_package_is_found_through_its_entry_point(tmp_path, monkeypatch):
    """A package that declares an entry point in `finops_pipeline.sources` is a source: no change here."""
    site = tmp_path / "site"
    (site / "acme_billing-1.0.dist-info").mkdir(parents=True)
    (site / "acme_billing-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-billing\nVersion: 1.0\n")
    (site / "acme_billing-1.0.dist-info" / "entry_points.txt").write_text(
        "[finops_pipeline.sources]\nacme = acme_billing:AcmeSource\n")
    (site / "acme_billing.py").write_text(
        "from finops_pipeline.sources.demo import DemoSource\n"
        "class AcmeSource(DemoSource):\n    name = 'acme'\n    cost_basis = 'estimated'\n")
    monkeypatch.syspath_prepend(str(site))
    registry.source_names.cache_clear()
    try:
        settings = load_settings({"FINOPS_SOURCE": "demo,acme", "FINOPS_DATA_DIR": str(tmp_path)})
        assert "acme" in registry.source_names()
        (acme,) = [s for s in registry.build_sources(settings) if s.name == "acme"]
        assert acme.cost_basis == "estimated"
        Definitions.validate_loadable(build_definitions(settings))
    finally:
        sys.modules.pop("acme_billing", None)
        registry.source_names.cache_clear()


def test_detection_reads_the_dbt_views_of_its_grain(both):
    """Lineage shows what forecasts and anomalies read: the series view of the grain, and the AI
    rules' usage and GPU hours (so `*anomalies` builds them)."""
    for grain, defs in both.items():
        graph = defs.resolve_asset_graph()
        assert AssetKey(f"{grain}_cost_series") in graph.get(AssetKey("cost_forecasts")).parent_keys
        assert {AssetKey(f"{grain}_cost_series"), AssetKey("sku_first_seen"), AssetKey(f"{grain}_ai_usage"),
                AssetKey("gpu_hours")} <= graph.get(AssetKey("anomalies")).parent_keys
