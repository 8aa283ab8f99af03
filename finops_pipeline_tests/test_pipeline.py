"""The pipeline materialized over 405 days of the demo bill: what a FinOps engineer would check."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import build_sensor_context

from finops_pipeline.detection.series import contains, series_key
from finops_pipeline.sources.demo import MONTHLY_CREDIT, ONE_OFF_CREDITS, injected_anomalies
from finops_pipeline.sources.demo_ai import injected_ai_anomalies

pytestmark = pytest.mark.integration

TABLES = ["raw_billing", "stg_focus__billing", "daily_costs", "team_costs", "cost_forecasts", "anomalies"]


def _anomalies(pipeline) -> pd.DataFrame:
    frame = pipeline.query("SELECT * FROM anomalies")
    frame["day"] = frame["period_start"].dt.tz_convert("UTC").dt.date
    return frame


def _in_ground_truth(pipeline, found: pd.DataFrame) -> pd.Series:
    """Whether each anomaly is on an injected anomaly's days, on its series or on one that contains
    it (its account, service, provider, team or the total)."""
    teams = dict(pipeline.query(
        "SELECT DISTINCT series_key, team FROM anomalies WHERE series_level = 'sub_account_service'").values)
    truths = [(t, {"series_level": "sub_account_service", "provider": t.provider, "sub_account_id": t.sub_account_id,
                   "service_name": t.service_name, "team": teams.get(_truth_key(t))})
              for t in (*injected_anomalies(), *injected_ai_anomalies())]
    # An AI anomaly's key is its own series too.
    keys = {series_key("api_key", t.provider, t.sub_account_id, t.api_key_id): t for t in injected_ai_anomalies()}
    if found.empty:
        return pd.Series(dtype=bool)
    return found.apply(lambda row: any(t.start_date <= row.day <= t.end_date
                                       and (row.series_key == _truth_key(t) or contains(row, fine)) for t, fine in truths)
                       or (row.series_key in keys and keys[row.series_key].covers(row.day)), axis=1)


def _sensor_tick(defs, instance, cursor=None):
    """One tick of the alert sensor, as the code location defines it."""
    sensor = defs.get_sensor_def("anomalies_sensor")
    return sensor(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))


def _truth_key(truth) -> str:
    return series_key("sub_account_service", truth.provider, truth.sub_account_id, truth.service_name)


def test_every_injected_anomaly_is_found_on_its_series(pipeline):
    found = _anomalies(pipeline)
    for truth in injected_anomalies():
        hits = found[(found.series_key == _truth_key(truth)) & (found.day >= truth.start_date) & (found.day <= truth.end_date)]
        assert len(hits), f"{truth.name} ({truth.start_date}..{truth.end_date}) was not detected"
        assert (hits.direction == "spike").all()
        assert hits.impact_usd.max() > 250, f"{truth.name}: impact understated"
        assert set(hits.severity) & {"warning", "critical"}, f"{truth.name} found only at info severity"


def test_every_injected_ai_anomaly_pages_once_on_its_model_with_its_numbers(pipeline):
    """The AI bill's retry loop, cache collapse, long-context price and grown prompts, and the GPU
    cluster's idle node: each an incident at warning or above on its project × model (cluster × GPU
    type) series, which nothing explains away, found by the rule of its kind (the retry loop by the
    cost band: more of the same)."""
    found = _anomalies(pipeline)
    rule = {"retry_loop": "robust_zscore", "cache_collapse": "cache_collapse", "unit_cost_rise": "unit_cost_rise",
            "cost_per_request": "cost_per_request", "idle_gpu": "idle_gpu"}
    for truth in injected_ai_anomalies():
        hits = found[(found.series_key == _truth_key(truth)) & (found.day >= truth.start_date) & (found.day <= truth.end_date)]
        assert len(hits), f"{truth.name} was not detected"
        assert hits.explained_by.isna().all() and set(hits.severity) & {"warning", "critical"}, truth.name
        assert any(rule[truth.kind] in d.split(",") for d in hits.detectors), f"{truth.name}: {set(hits.detectors)}"
        if truth.kind == "idle_gpu":  # four A100s at $3.67 an hour, idle from 14:00, then all day
            assert hits.impact_usd.round(-1).tolist() == [150.0, 350.0], f"{truth.name}: {hits.impact_usd.tolist()}"
        else:
            assert (hits.impact_usd > 150).all(), f"{truth.name}: impact understated"


def test_fees_tax_and_credits_raise_no_anomaly(pipeline):
    found = _anomalies(pipeline)
    other = pipeline.query(
        """SELECT day, provider, sub_account_id, service_name, charge_category, sum(effective_cost) AS c
           FROM daily_costs WHERE charge_category <> 'Usage' GROUP BY ALL"""
    )
    other["day"] = pd.to_datetime(other["day"]).dt.date
    # Purchase, Tax and Credit rows swing the bill by thousands of dollars on their days...
    assert other[other.charge_category.isin(["Purchase", "Tax"])].c.max() > 1000
    assert other[other.charge_category == "Credit"].c.min() <= -5000
    assert {d.day for d in other.day} == {1, 15} | {d.day for d in ONE_OFF_CREDITS}
    # ...yet neither the total nor the series they belong to flag on those days: only Usage is scored.
    touched = {("total", d) for d in other.day} | {
        (series_key("sub_account_service", r.provider, r.sub_account_id, r.service_name), r.day) for r in other.itertuples()
    }
    flagged = found[[(k, d) in touched for k, d in zip(found.series_key, found.day)]]
    flagged = flagged[~_in_ground_truth(pipeline, flagged)]
    assert flagged.empty, flagged[["day", "series_key", "impact_usd"]].to_string()
    assert MONTHLY_CREDIT[2] in set(other.service_name)


def test_false_alarms_are_rare_and_never_above_info(pipeline):
    found = _anomalies(pipeline)
    false = found[~_in_ground_truth(pipeline, found)]
    series_days = pipeline.query(
        "SELECT count(DISTINCT series_key) * count(DISTINCT forecast_period) AS n FROM cost_forecasts WHERE horizon = 0"
    ).n[0]
    assert len(false) <= 0.001 * series_days, false[["day", "series_key", "deviation_pct"]].to_string()
    assert set(false.severity) <= {"info"}


def test_daily_costs_reconcile_with_the_line_items(pipeline):
    raw = pipeline.query(
        """SELECT ChargeCategory AS charge_category, sum(BilledCost) AS billed, sum(EffectiveCost) AS effective,
                  sum(ListCost) AS list, count(*) AS n FROM raw_billing GROUP BY 1 ORDER BY 1"""
    )
    daily = pipeline.query(
        """SELECT charge_category, sum(billed_cost) AS billed, sum(effective_cost) AS effective,
                  sum(list_cost) AS list, sum(line_items) AS n FROM daily_costs GROUP BY 1 ORDER BY 1"""
    )
    pd.testing.assert_frame_equal(raw, daily, check_dtype=False)
    assert set(raw.charge_category) == {"Usage", "Purchase", "Tax", "Credit"}
    days = pipeline.query("SELECT count(DISTINCT day) AS n, min(day) AS lo, max(day) AS hi FROM daily_costs")
    assert days.n[0] == 405


def test_team_costs_report_the_untagged_share(pipeline):
    teams = pipeline.query("SELECT * FROM team_costs")
    assert "untagged" in set(teams.team)
    share = teams.groupby("day").untagged_share.first()
    assert 0.05 < share.mean() < 0.15
    assert teams.groupby("day").share_of_day.sum().between(0.999, 1.001).all()


def test_anomaly_rows_carry_their_numbers_and_contributors(pipeline):
    found = _anomalies(pipeline)
    required = ["anomaly_id", "period_start", "granularity", "series_level", "provider", "sub_account_id", "service_name",
                "team", "actual_cost", "expected_cost", "lower_bound", "upper_bound", "impact_usd", "deviation_pct",
                "severity", "detected_at"]
    assert not found[required[:2] + required[8:]].isna().any().any()
    assert found.anomaly_id.is_unique
    assert str(found.period_start.dtype).startswith("datetime64") and found.period_start.dt.tz is not None
    assert set(found.granularity) == {"daily"}
    spikes = found[found.direction == "spike"]
    assert (spikes.actual_cost > spikes.upper_bound).all()
    assert ((spikes.impact_usd - (spikes.actual_cost - spikes.expected_cost)).abs() < 0.02).all()
    # The cryptominer's excess sits on one instance: it must be the top contributor.
    miner = next(t for t in injected_anomalies() if t.name == "cryptominer")
    row = found[(found.series_key == _truth_key(miner)) & (found.day == miner.start_date)].iloc[0]
    top = json.loads(row.top_contributors)[0]
    assert top["dimension"] == "resource" and top["delta"] > 400
    assert top["name"].startswith(f"arn:aws:instance:us-east-1:{miner.sub_account_id}:")
    assert row.team == "untagged"  # the sandbox's instances carry no team tag
    # Its root cause, one level finer in each dimension, leads with the same instance.
    cause = json.loads(row.root_cause)
    assert list(cause) == ["resource", "sku", "region", "charge_description"]
    assert cause["resource"][0] == top and all(c[0]["delta"] > 0 for c in cause.values())
    # The sandbox account moved with it: its root cause, by service, names EC2 first.
    account = found[(found.series_key == f"sub_account:AWS/{miner.sub_account_id}") & (found.day == miner.start_date)].iloc[0]
    cause = json.loads(account.root_cause)
    assert list(cause) == ["service", "team", "region"] and cause["service"][0]["name"] == miner.service_name
    assert account.explained_by == row.anomaly_id  # and the alert goes to EC2, not to the account


def test_forecasts_never_look_ahead_and_cover_thirty_days(pipeline):
    f = pipeline.query(
        "SELECT forecast_period, min(horizon) lo, max(horizon) hi, max(trained_through) tt FROM cost_forecasts GROUP BY 1"
    )
    assert (pd.to_datetime(f.tt) < pd.to_datetime(f.forecast_period)).all()
    assert (f.lo == 0).all() and (f.hi == 30).all()
    # Forecasting starts once four weeks of history exist.
    assert str(f.forecast_period.min())[:10] == "2025-02-03"


def _snapshot(pipeline) -> dict[str, pd.DataFrame]:
    return {t: pipeline.query(f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


def test_rematerializing_a_partition_leaves_every_table_identical(pipeline):
    before = _snapshot(pipeline)
    miner = next(t for t in injected_anomalies() if t.name == "cryptominer")
    result = pipeline.run("daily_cost_pipeline", miner.start_date.isoformat())
    after = _snapshot(pipeline)
    for table in TABLES:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)
    # The day's Prophet fits are the backfill's, reused rather than run again.
    metadata = result.asset_materializations_for_node("cost_forecasts")[0].metadata
    assert metadata["prophet_fits_run"].value == 0 and metadata["prophet_fits_reused"].value > 5


def test_sensor_requests_one_run_per_new_materialization_and_nothing_twice(pipeline):
    sensor_defs = pipeline.defs
    first = _sensor_tick(sensor_defs, instance=pipeline.instance)
    # The session's backfill and the re-run above: two runs that materialized anomalies.
    assert len(first.run_requests) == 2
    cursor = first.cursor
    for truth in injected_anomalies()[:2]:
        pipeline.run("daily_cost_pipeline", truth.start_date.isoformat())
    second = _sensor_tick(sensor_defs, instance=pipeline.instance, cursor=cursor)
    assert len(second.run_requests) == 2
    assert len({r.run_key for r in second.run_requests}) == 2
    third = _sensor_tick(sensor_defs, instance=pipeline.instance, cursor=second.cursor)
    assert third.run_requests == []


def test_alert_job_writes_each_anomaly_to_the_outbox_once(pipeline):
    pipeline.run("anomaly_alert_job")
    ledger = pipeline.query("SELECT * FROM alert_ledger")
    alertable = pipeline.query(
        "SELECT incident_id FROM incidents WHERE severity IN ('warning', 'critical') AND explained_by IS NULL")
    assert set(ledger.incident_id) == set(alertable.incident_id)  # one alert per incident
    # The injected anomalies (five cloud, five AI), each alerted on its own series, not on the
    # account, team, provider and total it moved too, and nothing else.
    injected = len(injected_anomalies()) + len(injected_ai_anomalies())
    assert len(ledger) == injected == 10
    assert pipeline.query("SELECT count(*) AS n FROM incidents WHERE explained_by IS NOT NULL").n[0] > injected
    outbox = pipeline.settings.outbox_dir
    files = sorted(outbox.glob("*.json"))
    assert len(files) == len(ledger)
    alert = json.loads(files[0].read_text())
    assert {"actual_usd", "expected_usd", "band_usd", "impact_usd", "top_contributors"} <= set(alert["anomaly"])
    reports = sorted(pipeline.settings.reports_dir.glob("*.md"))
    assert len(reports) == 1 and "Template (no LLM configured)" in reports[0].read_text()

    pipeline.run("anomaly_alert_job")
    assert len(pipeline.query("SELECT * FROM alert_ledger")) == len(ledger)
    assert len(sorted(outbox.glob("*.json"))) == len(files)
    assert len(sorted(pipeline.settings.reports_dir.glob("*.md"))) == 1


def test_detection_quality_counts_every_page_under_its_series_profile(pipeline):
    pipeline.run("anomaly_alert_job")
    quality = pipeline.query("SELECT * FROM detection_quality")
    pages = pipeline.query("""SELECT count(*) AS n FROM incidents WHERE severity IN ('warning', 'critical')
                              AND explained_by IS NULL AND signal = 'cost'""").n[0]
    assert quality.pages.sum() == pages == len(injected_anomalies()) + len(injected_ai_anomalies())
    # The demo bill's series are calibrated: each profile scored has series-months behind it.
    assert set(quality.profile) <= {"steady", "weekly", "bursty", "intermittent", "sparse", "uncalibrated"}
    calibrated = quality[quality.profile != "uncalibrated"]
    assert (calibrated.series_months > 0).all() and calibrated.series.sum() > 0


def test_the_forgotten_gpu_is_one_incident_and_one_alert_not_fourteen(pipeline):
    pipeline.run("anomaly_alert_job")  # rolls up incidents (and sends nothing twice)
    gpu = next(t for t in injected_anomalies() if t.name == "forgotten_gpu")
    found = _anomalies(pipeline)
    days = found[found.series_key == _truth_key(gpu)].day
    flagged = days[(days >= gpu.start_date) & (days <= gpu.end_date)]
    incidents = pipeline.query("SELECT * FROM incidents WHERE series_key = ?", [_truth_key(gpu)])
    overlapping = (incidents.start_period.dt.date <= gpu.end_date) & (incidents.latest_period.dt.date >= gpu.start_date)
    (incident,) = incidents[overlapping].itertuples()
    assert len(flagged) >= 10 and incident.periods == len(flagged) and incident.status == "resolved"
    assert incident.total_excess_usd > 10 * 250
    alerts = pipeline.query("SELECT * FROM alert_ledger WHERE announced->>'$.series_key' = ?", [_truth_key(gpu)])
    assert len(alerts) == 1 and json.loads(alerts.announced[0])["incident_id"] == incident.incident_id


def test_chart_shows_cost_against_its_band(pipeline):
    charts = sorted(pipeline.settings.charts_dir.glob("anomalies_*.png"))
    assert charts and all(c.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for c in charts)
    record = pipeline.instance.fetch_materializations(
        __import__("dagster").AssetKey("anomalies"), limit=1
    ).records[0]
    assert record.asset_materialization.metadata["chart"].value.startswith("![cost vs forecast](data:image/png;base64,")


def test_daily_partitions_cover_the_window(pipeline):
    from finops_pipeline.defs.partitions import billing_partitions

    keys = billing_partitions(pipeline.settings).get_partition_keys_in_range(__import__("dagster").PartitionKeyRange("2025-01-01", "2026-02-09"))
    assert len(keys) == 405
    materialized = pipeline.instance.get_materialized_partitions(__import__("dagster").AssetKey("anomalies"))
    assert set(keys) <= materialized
    assert (pd.Timestamp("2026-02-09") - pd.Timestamp("2025-01-01")) == timedelta(days=404)


def test_alerts_go_to_slack_with_an_llm_report_and_billing_text_escaped(pipeline, tmp_path):
    """The same alert job with Slack and an LLM configured, on a copy of the pipeline's database
    where nothing was alerted yet and every anomaly carries hostile billing text."""
    import duckdb

    from dagster import DagsterInstance

    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.settings import load_settings
    from finops_pipeline_tests.conftest import pipeline_env
    from benchmarks.protocol_servers import OpenAIServer
    from benchmarks.slack_server import SlackServer
    from finops_pipeline_tests.test_llm_report import grounded_reply

    db = _copy_without_alerts(pipeline, tmp_path)
    with duckdb.connect(str(db)) as con:
        # The API loop's team has its own channel; every other team tag is hostile text.
        con.execute("""UPDATE anomalies SET service_name = '<https://evil.example|click>',
                       team = CASE WHEN series_key LIKE '%AWS Lambda%' THEN 'platform' ELSE '<!channel>' END""")
    with SlackServer() as slack, OpenAIServer(default=grounded_reply) as llm:
        env = {"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_DUCKDB_PATH": str(db), "SLACK_BOT_TOKEN": "xoxb-secret-token",
               "FINOPS_SLACK_API_URL": slack.api_url, "FINOPS_SLACK_CHANNEL": "#cost-alerts",
               "FINOPS_SLACK_ROUTES": "platform=#platform-costs",
               "OPENAI_API_KEY": "sk-secret-key", "OPENAI_BASE_URL": llm.base_url, "FINOPS_LLM_MODEL": "local-model",
               "FINOPS_LLM_PRICING": "0.15,0.60"}
        with pipeline_env(**env):
            defs = build_definitions(load_settings(env))
            instance = DagsterInstance.ephemeral()
            assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success
            assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success
    expected = pipeline_query(db, "SELECT count(*) AS n FROM incidents WHERE severity <> 'info' AND explained_by IS NULL").n[0]
    assert len(slack.posts) == expected  # one per incident; the second run sent nothing again
    def team_of(post):
        (field,) = [f["text"] for b in post["blocks"] for f in b.get("fields", []) if f["text"].startswith("*Team*")]
        return field.removeprefix("*Team*\n")

    # The loop's alert went to its team's channel; other teams' and no team's to the default.
    assert {p["channel"] for p in slack.posts if team_of(p) == "platform"} == {"#platform-costs"}
    assert {p["channel"] for p in slack.posts if team_of(p) != "platform"} == {"#cost-alerts"}
    assert {p["channel"] for p in slack.posts} == {"#cost-alerts", "#platform-costs"}
    # Each alert's chart (cost against its band, the incident marked) was uploaded into its thread.
    assert len(slack.uploads) == expected and all(u["content"][:8] == b"\x89PNG\r\n\x1a\n" for u in slack.uploads.values())
    heads = [ts for ts, m in slack.messages.items() if not m["thread_ts"] and m["text"]]
    assert all(len([m for m in slack.thread(ts) if m["files"]]) == 1 for ts in heads)
    hostile = "\n".join(json.dumps(p) for p in slack.posts)
    for raw in ("<!channel>", "<https://evil.example"):
        at = hostile.find(raw)
        assert at < 0, f"unescaped {raw!r} in a post: …{hostile[max(0, at - 200):at + 60]}…"
    assert "&lt;!channel&gt;" in hostile
    assert len(llm.requests) == expected + 1  # one analysis per incident and the run's summary, all in the first run
    with duckdb.connect(str(db), read_only=True) as con:
        ledger = con.execute("SELECT destination, channel, message_ref FROM alert_ledger").df()
        report = con.execute("SELECT kind, model, used_fallback, prompt_tokens, cost_usd, summary, markdown FROM anomaly_reports "
                             "ORDER BY kind = 'run' DESC").df()
    assert len(ledger) == expected and set(ledger.destination) == {"slack"} and ledger.message_ref.str.match(r"\d+\.\d+").all()
    assert list(report.kind) == ["run"] + ["incident"] * expected
    assert set(report.model) == {"local-model"} and not report.used_fallback.any() and set(report.prompt_tokens) == {321}
    assert report.cost_usd.round(8).eq(round((321 * 0.15 + 54 * 0.60) / 1e6, 8)).all()
    assert "A runaway workload" in report.markdown[0] and "## Figures" in report.markdown[0]
    # Each alert carries its incident's analysis, escaped like the billing text it may echo.
    assert all("*Analysis*" in json.dumps(p["blocks"]) for p in slack.posts if not p.get("thread_ts"))
    # Secrets never reach the stored report or the alerts.
    for text in (hostile, report.markdown[0]):
        assert "xoxb-secret-token" not in text and "sk-secret-key" not in text


def test_a_restated_day_revises_its_sent_alerts_and_never_sends_them_twice(pipeline, tmp_path):
    """On a copy of the pipeline's database, now fed by FOCUS exports: alerts go to Slack; then the
    provider restates the api_loop days (May 12 billed like the week before, a Correction added
    to May 13). The sensor requests exactly those days, the re-scored incident edits the message
    already posted, and nothing is posted again."""
    from datetime import date

    from dagster import DagsterInstance

    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.defs.ingest.sensors import build_restatements_sensor
    from finops_pipeline.settings import load_settings
    from finops_pipeline.sources import demo
    from finops_pipeline_tests.conftest import pipeline_env
    from finops_pipeline_tests.focus_exports import write_export
    from benchmarks.slack_server import SlackServer

    loop = next(t for t in injected_anomalies() if t.name == "api_loop")
    day1, day2 = loop.start_date, loop.end_date  # 2025-05-12, 2025-05-13
    loop_key = _truth_key(loop)
    db = _copy_without_alerts(pipeline, tmp_path)
    exports = tmp_path / "exports"
    may = demo.bill(date(2025, 5, 1), date(2025, 6, 1))  # the whole demo bill, its AI rows too
    write_export(exports / "BILLING_PERIOD=2025-05" / "part-0.csv", date(2025, 5, 1), date(2025, 6, 1), frame=may.copy())

    def loop_alerts():
        ledger = pipeline_query(db, "SELECT incident_id, status, revision, message_ref, announced FROM alert_ledger")
        ledger["announced"] = ledger["announced"].map(json.loads)
        return ledger[[a["series_key"] == loop_key for a in ledger["announced"]]]

    with SlackServer() as slack:
        env = {"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_DUCKDB_PATH": str(db), "SLACK_BOT_TOKEN": "xoxb-test",
               "FINOPS_SLACK_API_URL": slack.api_url, "FINOPS_SOURCE": "focus", "FINOPS_FOCUS_PATH": str(exports)}
        with pipeline_env(**env):
            defs = build_definitions(load_settings(env))
            instance = DagsterInstance.ephemeral()
            sensor = build_restatements_sensor(load_settings(env))

            def tick(cursor):
                return sensor(build_sensor_context(cursor=cursor))

            assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success
            posted = len(slack.posts)
            (before,) = loop_alerts().itertuples()  # one alert for the two days of the loop
            assert (before.announced["periods"], before.announced["start"]) == (2, day1.isoformat())
            watching = tick(None)

            # The restatement: May 12 rebilled as the Monday before; a Correction on May 13 in June's export.
            restated = pd.concat([may[may.ChargePeriodStart.dt.date != day1],
                                  may[may.ChargePeriodStart.dt.date == day1 - timedelta(days=7)].assign(
                                      ChargePeriodStart=lambda f: f.ChargePeriodStart + timedelta(days=7),
                                      ChargePeriodEnd=lambda f: f.ChargePeriodEnd + timedelta(days=7))])
            write_export(exports / "BILLING_PERIOD=2025-05" / "part-0.csv", date(2025, 5, 1), date(2025, 6, 1), frame=restated)
            lambda_row = may[(may.ChargePeriodStart.dt.date == day2) & (may.ServiceName == loop.service_name)
                             & (may.SubAccountId == loop.sub_account_id) & (may.ChargeCategory == "Usage")].head(1)
            correction = lambda_row.assign(ChargeClass="Correction", BilledCost=250.0, EffectiveCost=250.0, ListCost=250.0,
                                           BillingPeriodStart=pd.Timestamp("2025-06-01", tz="UTC"),
                                           BillingPeriodEnd=pd.Timestamp("2025-07-01", tz="UTC"))
            write_export(exports / "BILLING_PERIOD=2025-06" / "part-0.csv", date(2025, 6, 1), date(2025, 7, 1), frame=correction)

            (request,) = tick(watching.cursor).run_requests
            assert (request.tags["dagster/asset_partition_range_start"],
                    request.tags["dagster/asset_partition_range_end"]) == (day1.isoformat(), day2.isoformat())
            assert defs.resolve_job_def("daily_cost_pipeline").execute_in_process(instance=instance, tags=request.tags).success
            assert len(_sensor_tick(defs, instance=instance).run_requests) >= 1
            for _ in range(2):  # the second run finds nothing left to send or revise
                assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success

    alerts = [p for p in slack.posts if not p.get("thread_ts")]
    assert len(alerts) == posted  # nothing posted twice: the revision went into the alert's thread
    # The correction landed on the day it corrects; the rebilled day is back to normal.
    lambda_cost = pipeline_query(db, """SELECT CAST(timezone('UTC', ChargePeriodStart) AS DATE) AS day, sum(EffectiveCost)
                                        FROM raw_billing WHERE ServiceName = ? AND SubAccountId = ? AND ChargePeriodStart >= ?
                                          AND ChargePeriodStart < ? GROUP BY 1 ORDER BY 1""",
                                 [loop.service_name, loop.sub_account_id, f"{day1} 00:00:00+00", f"{day2 + timedelta(days=1)} 00:00:00+00"])
    # The loop's incident is now May 13 alone (a new first anomaly, so a new incident id): the same
    # alert was revised to say so, in the message already posted.
    (after,) = loop_alerts().itertuples()
    assert after.message_ref == before.message_ref and after.incident_id != before.incident_id
    assert (after.status, after.revision, after.announced["periods"], after.announced["start"]) == \
        ("updated", 1, 1, day2.isoformat())
    assert after.announced["actual_usd"] == pytest.approx(float(lambda_cost.iloc[1, 1]), abs=0.01)
    edited = {u["ts"]: u for u in slack.updates}
    assert len(slack.updates) == len(edited)  # each message edited once
    assert f"${after.announced['actual_usd']:,.2f}" in edited[after.message_ref]["text"]
    assert slack.messages[after.message_ref]["text"] == edited[after.message_ref]["text"]
    (reply,) = [m for m in slack.thread(after.message_ref) if not m["files"]]
    assert f"Now: ${after.announced['actual_usd']:,.2f} actual" in reply["text"]  # what changed, said in the thread


def pipeline_query(db, sql: str, params: list | None = None) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).df()


def test_marking_an_incident_expected_stops_its_alerts_after_one_last_edit(pipeline, tmp_path, capsys):
    """`finops-feedback` on a copy of the pipeline's database, alerts going to the outbox."""


    from dagster import DagsterInstance

    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.feedback.cli import main as feedback_cli
    from finops_pipeline.settings import load_settings
    from finops_pipeline_tests.conftest import pipeline_env

    db = _copy_without_alerts(pipeline, tmp_path)  # alerts go to this test's own outbox
    env = {"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_DUCKDB_PATH": str(db), "DAGSTER_HOME": ""}
    gpu = next(t for t in injected_anomalies() if t.name == "forgotten_gpu")
    with pipeline_env(**env):
        defs, instance = build_definitions(load_settings(env)), DagsterInstance.ephemeral()

        def alert_run():
            assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success

        alert_run()
        incident = pipeline_query(db, "SELECT incident_id FROM incidents WHERE series_key = ? ORDER BY periods DESC LIMIT 1",
                                  [_truth_key(gpu)]).incident_id[0]
        assert feedback_cli([incident, "expected", "--note", "training cluster for the Q4 model", "--by", "alice"]) == 0
        assert feedback_cli(["no-such-incident", "planned"]) == 1
        assert "no incident 'no-such-incident' in table incidents" in capsys.readouterr().err
        alert_run()
        alert_run()

    statuses = pipeline_query(db, "SELECT DISTINCT status FROM anomalies WHERE incident_id = ?", [incident]).status
    assert list(statuses) == ["expected"]
    stored = pipeline_query(db, "SELECT verdict, note, given_by FROM incident_feedback").to_dict("records")
    assert stored == [{"verdict": "expected", "note": "training cluster for the Q4 model", "given_by": "alice"}]
    (alert,) = pipeline_query(db, "SELECT status, revision, message_ref, announced FROM alert_ledger WHERE incident_id = ?",
                              [incident]).itertuples()
    assert (alert.status, alert.revision, json.loads(alert.announced)["feedback"]) == ("updated", 1, "expected")
    outbox = json.loads(Path(alert.message_ref).read_text())
    assert outbox["revision"] == 1 and "Marked expected: no further alerts" in json.dumps(outbox["slack_message"])


def _copy_without_alerts(pipeline, tmp_path) -> Path:
    """The pipeline's database as a fresh install would have it before any alert went out."""
    import shutil

    import duckdb

    db = tmp_path / "copy.duckdb"
    shutil.copy(pipeline.settings.duckdb_path, db)
    with duckdb.connect(str(db)) as con:
        for table in ("alert_ledger", "alert_outbox", "anomaly_reports"):
            con.execute(f"DELETE FROM {table}")
    return db


def test_slack_down_keeps_alerts_pending_and_the_sensor_retries_them(pipeline, tmp_path):
    """Slack refuses connections during the alert run: nothing is lost, the sensor (with no new
    materialization to react to) requests a delivery run once they are due, and with Slack back
    every alert is posted exactly once."""
    from datetime import datetime, timedelta, timezone

    import duckdb
    from dagster import DagsterInstance

    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.settings import load_settings
    from finops_pipeline_tests.conftest import pipeline_env
    from benchmarks.slack_server import SlackServer

    db = _copy_without_alerts(pipeline, tmp_path)
    down = SlackServer()  # bound but never started, then closed: connections are refused
    down._httpd.server_close()
    env = {"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_DUCKDB_PATH": str(db), "SLACK_BOT_TOKEN": "xoxb-test",
           "FINOPS_SLACK_API_URL": down.api_url}
    with pipeline_env(**env):
        defs = build_definitions(load_settings(env))
        instance = DagsterInstance.ephemeral()
        assert defs.resolve_job_def("anomaly_alert_job").execute_in_process(instance=instance).success
    alertable = pipeline_query(db, "SELECT count(*) AS n FROM incidents WHERE severity <> 'info' AND explained_by IS NULL").n[0]
    outbox = pipeline_query(db, "SELECT kind, status, last_error FROM alert_outbox")
    assert (outbox.kind == "alert").sum() == alertable and (outbox.status != "sent").all()
    assert outbox.last_error.dropna().str.startswith("unreachable").any()

    # Make them due now (the back-off would have them wait 30 s), then let the sensor look.
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE alert_outbox SET next_attempt_at = ?", [datetime.now(timezone.utc) - timedelta(seconds=1)])
    with SlackServer() as slack:
        env["FINOPS_SLACK_API_URL"] = slack.api_url
        with pipeline_env(**env):
            defs = build_definitions(load_settings(env))
            tick = _sensor_tick(defs, instance=instance, cursor="999999999")
            (request,) = tick.run_requests
            assert request.asset_selection == [__import__("dagster").AssetKey("anomaly_alerts")]
            job = defs.resolve_job_def("anomaly_alert_job")
            assert job.get_subset(asset_selection=set(request.asset_selection)).execute_in_process(instance=instance).success
            # Delivered: nothing is due, so the next tick asks for nothing.
            assert _sensor_tick(defs, instance=instance, cursor="999999999").run_requests == []
    heads = [p for p in slack.posts if not p.get("thread_ts")]
    assert len(heads) == alertable and len({p["metadata"]["event_payload"]["message_id"] for p in heads}) == alertable
    assert pipeline_query(db, "SELECT count(*) AS n FROM alert_outbox WHERE status <> 'sent'").n[0] == 0


def test_the_daily_digest_counts_a_day_and_is_sent_once(pipeline, tmp_path):
    """The digest for a day of the forgotten GPU's two weeks, to the outbox, run twice."""
    from dagster import DagsterInstance, RunConfig

    from finops_pipeline.defs.alerting.assets import DigestConfig
    from finops_pipeline.definitions import build_definitions
    from finops_pipeline.settings import load_settings
    from finops_pipeline_tests.conftest import pipeline_env

    import duckdb

    from finops_pipeline.detection.workflow import roll_up_incidents
    from finops_pipeline.grain import DAILY

    db = _copy_without_alerts(pipeline, tmp_path)
    with duckdb.connect(str(db)) as con:  # the incidents as the alert job leaves them, whatever ran before
        roll_up_incidents(con, DAILY)
    env = {"FINOPS_DATA_DIR": str(tmp_path), "FINOPS_DUCKDB_PATH": str(db)}
    gpu = next(t for t in injected_anomalies() if t.name == "forgotten_gpu")
    day = gpu.start_date + timedelta(days=3)
    with pipeline_env(**env):
        defs = build_definitions(load_settings(env))
        instance = DagsterInstance.ephemeral()
        config = RunConfig(ops={"cost_digest": DigestConfig(day=day.isoformat())})
        for _ in range(2):
            assert defs.resolve_job_def("cost_digest_job").execute_in_process(instance=instance, run_config=config).success
    (sent,) = sorted((tmp_path / "outbox").glob("digest_*.json"))
    digest = json.loads(sent.read_text())["digest"]
    expected_counts = pipeline_query(db, """SELECT severity, count(*) AS n FROM anomalies WHERE explained_by IS NULL
        AND CAST(timezone('UTC', period_start) AS DATE) = ? GROUP BY 1""", [day])
    assert digest["anomalies_by_severity"] == {s: int(expected_counts.set_index("severity").n.get(s, 0))
                                              for s in ("info", "warning", "critical")}
    assert digest["anomalies_by_severity"]["warning"] + digest["anomalies_by_severity"]["critical"] >= 1
    assert any(i["series_key"] == _truth_key(gpu) for i in digest["top_incidents"])
    actual = pipeline_query(db, "SELECT sum(effective_cost) AS c FROM daily_costs WHERE charge_category = 'Usage' AND day = ?", [day]).c[0]
    assert digest["day_spend"]["actual_usd"] == pytest.approx(actual) and digest["day_spend"]["expected_usd"] > 0
    assert digest["month_to_date_spend"]["actual_usd"] > digest["day_spend"]["actual_usd"]
    assert pipeline_query(db, "SELECT count(*) AS n FROM alert_outbox WHERE kind = 'digest'").n[0] == 1
    markdown = sent.with_suffix(".md").read_text()
    assert f"Cloud cost digest: {day}" in markdown and f"${actual:,.2f}" in markdown
