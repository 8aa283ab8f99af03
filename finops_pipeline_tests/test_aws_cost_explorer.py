"""AWS Cost Explorer through boto3, against botocore's Stubber: real request and response shapes
(validated against the service model), pagination and throttling."""

from __future__ import annotations

from datetime import date

import boto3
import duckdb
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from finops_pipeline.sources.aws_cost_explorer import fetch, to_focus
from finops_pipeline.sources.staging import stage_frame
from finops_pipeline.sources.validation import validate_staged
from finops_pipeline.warehouse import migrate


def _group(account: str, service: str, unblended: str, amortized: str) -> dict:
    return {"Keys": [account, service], "Metrics": {"UnblendedCost": {"Amount": unblended, "Unit": "USD"},
                                                   "AmortizedCost": {"Amount": amortized, "Unit": "USD"}}}


def _page(day: str, next_day: str, groups: list[dict], token: str | None = None) -> dict:
    page = {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [{"TimePeriod": {"Start": day, "End": next_day}, "Total": {}, "Groups": groups,
                               "Estimated": False}],
            "DimensionValueAttributes": []}
    if token:
        page["NextPageToken"] = token
    return page


REQUEST = {
    "TimePeriod": {"Start": "2025-03-01", "End": "2025-03-03"},
    "Granularity": "DAILY",
    "Metrics": ["UnblendedCost", "AmortizedCost"],
    "GroupBy": [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
}


@pytest.fixture
def ce():
    client = boto3.client("ce", region_name="us-east-1", aws_access_key_id="AKIATEST", aws_secret_access_key="secret")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_all_pages_are_read_and_throttling_is_retried_with_backoff(ce):
    client, stubber = ce
    stubber.add_client_error("get_cost_and_usage", service_error_code="ThrottlingException", http_status_code=400,
                             expected_params=REQUEST)
    stubber.add_response("get_cost_and_usage", _page("2025-03-01", "2025-03-02", [
        _group("012345678901", "Amazon Elastic Compute Cloud - Compute", "1200.50", "980.25"),
        _group("012345678901", "Tax", "84.04", "84.04"),
    ], token="page-2"), expected_params=REQUEST)
    stubber.add_response("get_cost_and_usage", _page("2025-03-02", "2025-03-03", [
        _group("098765432109", "Amazon Simple Storage Service", "40.10", "40.10"),
        _group("098765432109", "Amazon Elastic Compute Cloud - Compute", "-25.00", "-25.00"),
    ]), expected_params={**REQUEST, "NextPageToken": "page-2"})
    waits = []
    results = fetch(client, date(2025, 3, 1), date(2025, 3, 3), sleep=waits.append)
    assert waits == [1.0] and len(results) == 2

    focus = to_focus(results, billing_account_id="000011112222")
    assert list(focus.ChargeCategory) == ["Usage", "Tax", "Usage", "Credit"]
    assert list(focus.SubAccountId) == ["012345678901", "012345678901", "098765432109", "098765432109"]
    assert set(focus.BillingAccountId) == {"000011112222"}
    assert focus.BilledCost.sum() == pytest.approx(1299.64) and focus.EffectiveCost.sum() == pytest.approx(1079.39)
    assert str(focus.ChargePeriodStart.iloc[2]) == "2025-03-02 00:00:00+00:00"
    with duckdb.connect() as con:  # the same staging and checks raw_billing runs
        migrate(con)
        stage_frame(con, focus, "aws_cost_explorer")
        validate_staged(con, "aws_cost_explorer", date(2025, 3, 1), date(2025, 3, 3))
        assert con.execute("SELECT count(*) FROM _incoming").fetchone()[0] == 4
        assert con.execute("SELECT DISTINCT x_SourceFile FROM _incoming ORDER BY 1").fetchall() == [
            ("aws_cost_explorer:2025-03-01",), ("aws_cost_explorer:2025-03-02",)]


def test_throttling_gives_up_after_the_bound_and_other_errors_are_not_retried(ce):
    client, stubber = ce
    for _ in range(3):
        stubber.add_client_error("get_cost_and_usage", service_error_code="ThrottlingException", http_status_code=400)
    waits = []
    with pytest.raises(ClientError, match="ThrottlingException"):
        fetch(client, date(2025, 3, 1), date(2025, 3, 3), max_attempts=3, sleep=waits.append)
    assert waits == [1.0, 2.0]
    stubber.add_client_error("get_cost_and_usage", service_error_code="AccessDeniedException", http_status_code=403)
    with pytest.raises(ClientError, match="AccessDenied"):
        fetch(client, date(2025, 3, 1), date(2025, 3, 3), sleep=waits.append)
    assert waits == [1.0, 2.0]


def test_hourly_asks_for_utc_hours_and_lands_each_on_its_hour(ce):
    from datetime import datetime

    client, stubber = ce
    request = {**REQUEST, "Granularity": "HOURLY",
               "TimePeriod": {"Start": "2025-03-01T05:00:00Z", "End": "2025-03-01T07:00:00Z"}}
    page = _page("2025-03-01T05:00:00Z", "2025-03-01T06:00:00Z", [_group("012345678901", "AWS Lambda", "2.50", "2.50")])
    page["ResultsByTime"].append({"TimePeriod": {"Start": "2025-03-01T06:00:00Z", "End": "2025-03-01T07:00:00Z"},
                                  "Total": {}, "Groups": [_group("012345678901", "AWS Lambda", "3.00", "3.00")],
                                  "Estimated": True})
    stubber.add_response("get_cost_and_usage", page, expected_params=request)
    focus = to_focus(fetch(client, datetime(2025, 3, 1, 5), datetime(2025, 3, 1, 7), "HOURLY"))
    assert [t.hour for t in focus.ChargePeriodStart] == [5, 6]
    assert [(e - s).total_seconds() for s, e in zip(focus.ChargePeriodStart, focus.ChargePeriodEnd)] == [3600, 3600]
