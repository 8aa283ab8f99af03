"""OpenAI and Anthropic admin APIs into raw_billing, over HTTP to local servers that speak their
usage and cost endpoints as documented: money from the cost endpoint to the cent, tokens per
key and hour from the usage endpoint, estimates marked, and every bad answer named."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest

from benchmarks.protocol_servers import AnthropicAdminServer, OpenAIAdminServer
from finops_pipeline.errors import SettingsError
from finops_pipeline.settings import load_settings
from finops_pipeline.sources import openai_admin
from finops_pipeline.sources.ai_billing import PriceTable, parse_openai_line_item
from finops_pipeline.sources.http_api import JsonApi
from finops_pipeline_tests.conftest import load_raw_billing

DAY1 = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
KEY = OpenAIAdminServer.KEY


def load(tmp_path, source: str, url: str, start: str, end: str | None = None, granularity: str = "daily",
         key: str = KEY, **env: str):
    """raw_billing materialized for ``start..end`` from ``source`` at ``url``, as the asset runs it."""
    return load_raw_billing(tmp_path, {"FINOPS_SOURCE": source, "FINOPS_GRANULARITY": granularity,
                                       "FINOPS_OPENAI_ADMIN_URL": url, "FINOPS_ANTHROPIC_ADMIN_URL": url,
                                       "OPENAI_ADMIN_KEY": key, "ANTHROPIC_ADMIN_KEY": key,
                                       "FINOPS_AI_TEAMS": "proj_chat=assistants", **env}, start, end)


def rows(tmp_path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "finops.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def failure(result) -> str:
    event = next(e for e in result.all_events if e.is_step_failure)
    error = event.event_specific_data.error
    return (error.cause or error).message


def hour(day: datetime, h: int) -> datetime:
    return day + timedelta(hours=h)


def openai_bill(currency: str = "usd") -> tuple[list[dict], dict]:
    costs = [
        # One model's input in one project, split between two keys by their tokens.
        {"start": DAY1, "project_id": "proj_chat", "line_item": "gpt-4o-2024-08-06, input", "value": Decimal("3.00"),
         "as_string": True, "currency": currency},
        {"start": DAY1, "project_id": "proj_chat", "line_item": "gpt-4o-2024-08-06, cached input",
         "value": Decimal("0.25")},
        {"start": DAY1, "project_id": "proj_chat", "line_item": "gpt-4o-2024-08-06, output", "value": Decimal("6.123456")},
        {"start": DAY1, "project_id": "proj_batch", "line_item": "text-embedding-3-small, input", "value": Decimal("0.40")},
        # Money no usage explains (a fine-tuning job): kept whole, with no key.
        {"start": DAY1, "project_id": "proj_batch", "line_item": "fine-tuning, training", "value": Decimal("12.5")},
    ]
    usage = {
        "completions": [
            {"start": hour(DAY1, 9), "model": "gpt-4o-2024-08-06", "project_id": "proj_chat", "api_key_id": "key_web",
             "input_tokens": 900_000, "input_cached_tokens": 200_000, "output_tokens": 400_000, "num_model_requests": 300},
            {"start": hour(DAY1, 15), "model": "gpt-4o-2024-08-06", "project_id": "proj_chat", "api_key_id": "key_cron",
             "input_tokens": 500_000, "input_cached_tokens": 0, "output_tokens": 212_345, "num_model_requests": 50},
            # Console usage has no key.
            {"start": hour(DAY1, 16), "model": "gpt-4o-2024-08-06", "project_id": "proj_chat", "api_key_id": None,
             "input_tokens": 0, "output_tokens": 0, "input_cached_tokens": 0, "num_model_requests": 1},
            # Usage the day's costs do not name (another model): tokens, no money.
            {"start": hour(DAY1, 17), "model": "gpt-4.1-mini", "project_id": "proj_chat", "api_key_id": "key_web",
             "input_tokens": 1_000_000, "output_tokens": 0, "num_model_requests": 10},
            # The next day, whose costs are not out yet: priced from the table, marked estimated.
            {"start": hour(DAY2, 3), "model": "gpt-4o-mini-2024-07-18", "project_id": "proj_chat", "api_key_id": "key_web",
             "input_tokens": 2_000_000, "output_tokens": 1_000_000, "num_model_requests": 80},
        ],
        "embeddings": [
            {"start": hour(DAY1, 2), "model": "text-embedding-3-small", "project_id": "proj_batch",
             "api_key_id": "key_etl", "input_tokens": 20_000_000, "num_model_requests": 2000},
        ],
    }
    return costs, usage


def test_openai_money_comes_from_costs_to_the_cent_and_tokens_per_key_from_usage(tmp_path):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage, max_buckets=1) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02", "2026-03-03")
    assert result.success
    # Every day's money is the cost endpoint's, to the cent; usage only divides it.
    assert rows(tmp_path, "SELECT sum(BilledCost) FROM raw_billing WHERE ChargePeriodStart < '2026-03-03'")[0][0] == \
        Decimal("22.273456")
    split = rows(tmp_path, """SELECT ResourceId, BilledCost, ConsumedQuantity, SkuMeter, PricingUnit, PricingQuantity,
                                     json_extract_string(Tags, '$.team')
                              FROM raw_billing WHERE SkuId = 'gpt-4o-2024-08-06:input' ORDER BY ResourceId""")
    # 700k and 500k uncached input tokens share $3.00: 1.75 and 1.25.
    assert split == [("key_cron", Decimal("1.25"), Decimal(500_000), "Input Tokens", "1000000 Tokens", Decimal("0.5"),
                      "assistants"),
                     ("key_web", Decimal("1.75"), Decimal(700_000), "Input Tokens", "1000000 Tokens", Decimal("0.7"),
                      "assistants")]
    assert rows(tmp_path, "SELECT DISTINCT ServiceCategory, ServiceSubcategory, ProviderName, SubAccountType FROM raw_billing") == \
        [("AI and Machine Learning", "Generative AI", "OpenAI", "Project")]
    # Daily mode reads daily usage: the key's row is its day; its requests and cost source travel
    # in x_ columns.
    web = rows(tmp_path, """SELECT ChargePeriodStart, x_ProviderColumns FROM raw_billing
                            WHERE ResourceId = 'key_web' AND SkuMeter = 'Input Tokens' AND ServiceName LIKE 'gpt-4o-2024%'""")
    assert web[0][0] == DAY1
    assert json.loads(web[0][1]) == {"x_Model": "gpt-4o-2024-08-06", "x_TokenType": "input", "x_ApiKeyId": "key_web",
                                     "x_Requests": 300, "x_CostSource": "actual"}
    # Money no usage explains stays whole, untagged (proj_batch has no team).
    assert rows(tmp_path, "SELECT ServiceName, BilledCost, ResourceId, Tags FROM raw_billing WHERE ChargeDescription = "
                          "'fine-tuning, training'") == [("fine-tuning, training", Decimal("12.5"), None, "{}")]
    # Usage the billed day's costs do not name: tokens, no money, its list price in ListCost.
    assert rows(tmp_path, "SELECT BilledCost, ListCost, x_ProviderColumns->>'x_CostSource' FROM raw_billing "
                          "WHERE ServiceName = 'gpt-4.1-mini'") == [(Decimal(0), Decimal("0.4"), "actual")]
    # A day without costs yet: usage × list price, marked estimated (2M × $0.15 + 1M × $0.60 per 1M).
    assert rows(tmp_path, "SELECT sum(BilledCost), min(x_ProviderColumns->>'x_CostSource') FROM raw_billing "
                          "WHERE ChargePeriodStart >= '2026-03-03'") == [(Decimal("0.9"), "estimated")]
    # One bucket a page: every page was followed.
    assert sum(r["path"].endswith("/costs") for r in server.requests) == 2
    assert all(r["query"]["group_by"] == ["project_id", "line_item"] for r in server.requests if r["path"].endswith("/costs"))


def test_a_rerun_once_costs_arrive_replaces_the_estimate_with_the_actual_figure(tmp_path):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-03").success
        server.costs.append({"start": DAY2, "project_id": "proj_chat", "line_item": "gpt-4o-mini-2024-07-18, input",
                             "value": Decimal("0.31")})
        server.costs.append({"start": DAY2, "project_id": "proj_chat", "line_item": "gpt-4o-mini-2024-07-18, output",
                             "value": Decimal("0.62")})
        assert load(tmp_path, "openai", server.base_url, "2026-03-03").success
    assert rows(tmp_path, "SELECT sum(BilledCost), count(*), min(x_ProviderColumns->>'x_CostSource') FROM raw_billing") == \
        [(Decimal("0.93"), 2, "actual")]


def test_rate_limits_are_waited_out_as_retry_after_says(tmp_path):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage, script=[(429, {"Retry-After": "1"})]) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert result.success
    first, second = server.requests[:2]
    assert first["path"] == second["path"] and second["received_at"] - first["received_at"] >= 1.0
    assert rows(tmp_path, "SELECT count(*) FROM raw_billing")[0][0] > 0


def test_a_refused_key_fails_the_partition_naming_the_endpoint_never_the_key(tmp_path):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-02").success
        before = rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")
        result = load(tmp_path, "openai", server.base_url, "2026-03-02", key="sk-admin-revoked-0123456789")
    message = failure(result)
    assert f"OpenAI: GET {server.base_url}/organization/costs answered HTTP 401" in message
    assert "is the admin key right" in message and "sk-admin-revoked" not in message
    assert not any("sk-admin-revoked" in line for line in result.logs)
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before  # nothing lost


def test_a_key_revoked_mid_window_fails_it_whole_and_keeps_what_was_loaded(tmp_path):
    """The first page answers, the key is revoked before the second: nothing of the window is
    half-written, what an earlier run loaded stays."""
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-02", "2026-03-03").success
    before = rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")
    revoked = (401, {}, {"error": {"type": "invalid_request_error", "message": "Incorrect API key provided"}})
    with OpenAIAdminServer(costs, usage, script=[None, revoked], max_buckets=1) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02", "2026-03-03")
    message = failure(result)
    assert f"GET {server.base_url}/organization/costs answered HTTP 401" in message and "Incorrect API key" in message
    assert len(server.requests) == 2 and "page" in server.requests[1]["query"]  # the second page was refused
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before


@pytest.mark.parametrize("bad, expected", [
    (lambda c: c[0].update(currency="eur"), "bucket 0 (2026-03-02 00:00 UTC), results[0].amount.currency is 'eur'"),
    (lambda c: c[0].update(value="n/a", as_string=True), None),
])
def test_bad_cost_answers_name_endpoint_bucket_and_field_and_keep_what_was_loaded(tmp_path, bad, expected):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-02").success
        before = rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")
        if expected is None:  # a value that is not a number: the server sends it as given
            server.costs[0]["value"] = "n/a"
            expected = "results[0].amount.value is 'n/a', not a number"
        else:
            bad(server.costs)
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert not result.success
    assert f"OpenAI: GET {server.base_url}/organization/costs, " in failure(result)
    assert expected in failure(result)
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before


def test_a_malformed_bucket_is_named(tmp_path):
    malformed = {"object": "page", "data": [{"object": "bucket", "start_time": "yesterday", "results": []}],
                 "has_more": False, "next_page": None}
    with OpenAIAdminServer([], {}, script=[(200, {}, malformed)]) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert f"OpenAI: GET {server.base_url}/organization/costs, bucket 0: start_time and end_time must be Unix " \
           "seconds, got 'yesterday' and None" in failure(result)


def test_a_refund_is_a_credit_not_usage_and_is_reported(tmp_path):
    costs, usage = openai_bill()
    costs.append({"start": DAY1, "project_id": "proj_chat", "line_item": "gpt-4o-2024-08-06, refund", "value": Decimal("-5")})
    with OpenAIAdminServer(costs, usage) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert result.success
    assert rows(tmp_path, "SELECT ChargeCategory, BilledCost FROM raw_billing WHERE BilledCost < 0") == [("Credit", Decimal(-5))]
    assert any("source openai: OpenAI: 2026-03-02, proj_chat, 'gpt-4o-2024-08-06, refund': a negative amount (-5.0), "
               "loaded as a credit" in line for line in result.logs)


def test_hourly_mode_reads_hourly_usage_and_lands_each_key_on_its_hour(tmp_path):
    costs, usage = openai_bill()
    with OpenAIAdminServer(costs, usage) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-02", granularity="hourly").success
    assert {r["query"]["bucket_width"][0] for r in server.requests if "/usage/" in r["path"]} == {"1h"}
    assert rows(tmp_path, """SELECT extract('hour' FROM ChargePeriodStart), ChargePeriodEnd - ChargePeriodStart
                             FROM raw_billing WHERE ResourceId = 'key_cron' GROUP BY ALL""") == [(15, timedelta(hours=1))]


def openai_media_bill() -> tuple[list[dict], dict]:
    """``openai_bill`` with image, speech and transcription usage and their day's costs."""
    costs, usage = openai_bill()
    costs += [
        {"start": DAY1, "project_id": "proj_chat", "line_item": "dall-e-3, images", "value": Decimal("0.80")},
        {"start": DAY1, "project_id": "proj_chat", "line_item": "tts-1, characters", "value": Decimal("0.45")},
        {"start": DAY1, "project_id": "proj_batch", "line_item": "whisper-1, seconds", "value": Decimal("0.12")},
    ]
    usage["images"] = [
        {"start": hour(DAY1, 10), "model": "dall-e-3", "project_id": "proj_chat", "api_key_id": "key_web",
         "size": "1024x1024", "source": "image.generation", "images": 12, "num_model_requests": 12},
        {"start": hour(DAY1, 11), "model": "dall-e-3", "project_id": "proj_chat", "api_key_id": "key_cron",
         "size": "1792x1024", "source": "image.generation", "images": 8, "num_model_requests": 4},
        # The next day, no costs yet and no image price: counted, at $0, with a warning.
        {"start": hour(DAY2, 5), "model": "dall-e-3", "project_id": "proj_chat", "api_key_id": "key_web",
         "images": 3, "num_model_requests": 3},
    ]
    usage["audio_speeches"] = [
        {"start": hour(DAY1, 12), "model": "tts-1", "project_id": "proj_chat", "api_key_id": "key_web",
         "characters": 30_000, "num_model_requests": 20},
    ]
    usage["audio_transcriptions"] = [
        {"start": hour(DAY1, 13), "model": "whisper-1", "project_id": "proj_batch", "api_key_id": "key_etl",
         "seconds": 1_200, "num_model_requests": 10},
        {"start": hour(DAY2, 6), "model": "whisper-1", "project_id": "proj_batch", "api_key_id": "key_etl",
         "seconds": 600, "num_model_requests": 5},
    ]
    return costs, usage


def test_openai_image_and_audio_usage_are_rows_with_their_meters_and_their_share_of_the_costs(tmp_path):
    with OpenAIAdminServer(*openai_media_bill(), max_buckets=1) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02", "2026-03-03")
    assert result.success
    media = rows(tmp_path, """SELECT ServiceName, ResourceId, SkuId, SkuMeter, ConsumedQuantity, ConsumedUnit,
                                     PricingQuantity, PricingUnit, BilledCost, ListCost,
                                     CAST(x_ProviderColumns->>'x_Requests' AS DOUBLE), x_ProviderColumns->>'x_CostSource',
                                     json_extract_string(Tags, '$.team')
                              FROM raw_billing WHERE ChargePeriodStart < '2026-03-03'
                                AND SkuMeter IN ('Images', 'Audio Characters', 'Audio Seconds')
                              ORDER BY SkuMeter, ResourceId""")
    assert media == [
        # tts-1 at $15 per 1M characters: the list price is what was billed.
        ("tts-1", "key_web", "tts-1:audio_characters", "Audio Characters", Decimal(30_000), "Characters",
         Decimal("0.03"), "1000000 Characters", Decimal("0.45"), Decimal("0.45"), 20, "actual", "assistants"),
        # whisper-1 at $0.006 a minute: 20 minutes.
        ("whisper-1", "key_etl", "whisper-1:audio_seconds", "Audio Seconds", Decimal(1_200), "Seconds", Decimal(20),
         "60 Seconds", Decimal("0.12"), Decimal("0.12"), 10, "actual", None),
        # 8 and 12 images share $0.80 (no image price: ListCost is the cost).
        ("dall-e-3", "key_cron", "dall-e-3:images", "Images", Decimal(8), "Images", Decimal(8), "1 Image",
         Decimal("0.32"), Decimal("0.32"), 4, "actual", "assistants"),
        ("dall-e-3", "key_web", "dall-e-3:images", "Images", Decimal(12), "Images", Decimal(12), "1 Image",
         Decimal("0.48"), Decimal("0.48"), 12, "actual", "assistants"),
    ]
    # The day adds up to the cost endpoint's figure, the new line items included.
    assert rows(tmp_path, "SELECT sum(BilledCost) FROM raw_billing WHERE ChargePeriodStart < '2026-03-03'")[0][0] == \
        Decimal("22.273456") + Decimal("1.37")
    # A day without costs: transcription priced from the table, images at $0 and named in the log.
    assert rows(tmp_path, """SELECT SkuMeter, ConsumedQuantity, BilledCost, x_ProviderColumns->>'x_CostSource'
                             FROM raw_billing WHERE ChargePeriodStart >= '2026-03-03'
                               AND SkuMeter IN ('Images', 'Audio Seconds') ORDER BY SkuMeter""") == [
        ("Audio Seconds", Decimal(600), Decimal("0.06"), "estimated"), ("Images", Decimal(3), Decimal(0), "estimated")]
    assert any("no price for model 'dall-e-3'" in line for line in result.logs)
    # Each endpoint read page by page, grouped like the token endpoints.
    for endpoint in ("images", "audio_speeches", "audio_transcriptions"):
        asked = [r for r in server.requests if r["path"] == f"/v1/organization/usage/{endpoint}"]
        assert len(asked) == 2 and all(r["query"]["group_by"] == ["model", "project_id", "api_key_id"] for r in asked)


EMPTY_PAGE = {"object": "page", "data": [], "has_more": False, "next_page": None}


@pytest.mark.parametrize("answers", [
    {},  # the endpoints answer, with buckets of no results
    {"images": EMPTY_PAGE, "audio_speeches": EMPTY_PAGE, "audio_transcriptions": EMPTY_PAGE},
    {"images": 404, "audio_speeches": 404, "audio_transcriptions": 404},  # a gateway or API without them
], ids=["no-results", "no-buckets", "not-found"])
def test_an_organisation_without_image_or_audio_usage_loads_as_before(tmp_path, answers):
    with OpenAIAdminServer(*openai_bill(), answers=answers) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02", "2026-03-03")
    assert result.success
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == [(10, Decimal("23.173456"))]
    assert rows(tmp_path, "SELECT DISTINCT ConsumedUnit FROM raw_billing WHERE ConsumedUnit IS NOT NULL") == \
        [("Tokens",)]
    assert {r["path"].rsplit("/", 1)[1] for r in server.requests} == \
        {"costs", "completions", "embeddings", "images", "audio_speeches", "audio_transcriptions"}


@pytest.mark.parametrize("endpoint, status", [("completions", 500), ("embeddings", 404), ("images", 500)])
def test_a_failing_usage_endpoint_fails_the_partition_naming_it(tmp_path, monkeypatch, endpoint, status):
    # No back-off between the five retries, so the test does not wait for them.
    monkeypatch.setattr(openai_admin, "JsonApi", functools.partial(JsonApi, backoff_seconds=0))
    with OpenAIAdminServer(*openai_media_bill()) as server:
        assert load(tmp_path, "openai", server.base_url, "2026-03-02").success
        before = rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing")
        server.answers[endpoint] = status
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert not result.success
    assert f"OpenAI: GET {server.base_url}/organization/usage/{endpoint} answered HTTP {status}" in failure(result)
    asked = sum(r["path"].endswith(f"/{endpoint}") for r in server.requests)
    assert asked == 2 + (5 if status == 500 else 0)  # the first load's request, then 1 + 5 retries of a 5xx
    assert rows(tmp_path, "SELECT count(*), sum(BilledCost) FROM raw_billing") == before


def test_a_bad_image_count_is_named_with_its_endpoint_bucket_and_field(tmp_path):
    costs, usage = openai_media_bill()
    usage["images"][0]["images"] = -3
    with OpenAIAdminServer(costs, usage) as server:
        result = load(tmp_path, "openai", server.base_url, "2026-03-02")
    assert f"OpenAI: GET {server.base_url}/organization/usage/images, bucket 0 (2026-03-02 00:00 UTC), " \
           "results[0].images is -3, a negative count" in failure(result)


def anthropic_bill() -> tuple[list[dict], dict]:
    costs = [
        {"start": DAY1, "workspace_id": "wrkspc_ml", "model": "claude-sonnet-4-20250514",
         "token_type": "uncached_input_tokens", "cents": Decimal("450.00"), "description": "Claude Sonnet 4 Usage - Input Tokens"},
        {"start": DAY1, "workspace_id": "wrkspc_ml", "model": "claude-sonnet-4-20250514",
         "token_type": "cache_creation.ephemeral_5m_input_tokens", "cents": Decimal("37.5"),
         "description": "Claude Sonnet 4 Usage - Input Tokens, Cache Write"},
        {"start": DAY1, "workspace_id": None, "model": "claude-3-5-haiku-20241022", "token_type": "output_tokens",
         "cents": Decimal("123.4567"), "description": "Claude Haiku 3.5 Usage - Output Tokens"},
        {"start": DAY1, "workspace_id": "wrkspc_ml", "model": None, "token_type": None, "cost_type": "web_search",
         "cents": Decimal("30"), "description": "Web Search"},
    ]
    usage = {"messages": [
        {"start": hour(DAY1, 8), "model": "claude-sonnet-4-20250514", "workspace_id": "wrkspc_ml", "api_key_id": "apikey_a",
         "uncached_input_tokens": 1_000_000, "cache_creation.ephemeral_5m_input_tokens": 100_000,
         "server_tool_use.web_search_requests": 20},
        {"start": hour(DAY1, 9), "model": "claude-sonnet-4-20250514", "workspace_id": "wrkspc_ml", "api_key_id": "apikey_b",
         "uncached_input_tokens": 500_000, "server_tool_use.web_search_requests": 10},
        {"start": hour(DAY1, 10), "model": "claude-3-5-haiku-20241022", "workspace_id": None, "api_key_id": None,
         "output_tokens": 300_000},
    ]}
    return costs, usage


def test_anthropic_cents_become_dollars_shared_by_key_with_every_token_type(tmp_path):
    costs, usage = anthropic_bill()
    with AnthropicAdminServer(costs, usage) as server:
        result = load(tmp_path, "anthropic", server.base_url, "2026-03-02",
                      FINOPS_AI_TEAMS="wrkspc_ml=research")
    assert result.success
    assert rows(tmp_path, "SELECT sum(BilledCost) FROM raw_billing")[0][0] == Decimal("6.409567")
    assert rows(tmp_path, """SELECT ResourceId, SkuMeter, BilledCost FROM raw_billing
                             WHERE SubAccountId = 'wrkspc_ml' ORDER BY SkuMeter, ResourceId""") == [
        ("apikey_a", "Cache Write Tokens (5 minutes)", Decimal("0.375")),
        ("apikey_a", "Input Tokens", Decimal("3")),
        ("apikey_b", "Input Tokens", Decimal("1.5")),
        ("apikey_a", "Web Search Requests", Decimal("0.2")),
        ("apikey_b", "Web Search Requests", Decimal("0.1")),
    ]
    # The default workspace (no id) and console usage (no key).
    assert rows(tmp_path, "SELECT SubAccountId, ResourceId, BilledCost, Tags FROM raw_billing "
                          "WHERE ServiceName LIKE 'claude-3-5-haiku%'") == [("default", None, Decimal("1.234567"), "{}")]
    assert rows(tmp_path, "SELECT DISTINCT json_extract_string(Tags, '$.team') FROM raw_billing "
                          "WHERE SubAccountId = 'wrkspc_ml'") == [("research",)]
    assert all(r["headers"]["anthropic-version"] == "2023-06-01" for r in server.requests)
    assert all(r["query"]["group_by[]"] for r in server.requests)


def test_anthropic_key_refused_is_named(tmp_path):
    with AnthropicAdminServer(*anthropic_bill()) as server:
        result = load(tmp_path, "anthropic", server.base_url, "2026-03-02", key="sk-ant-admin-wrong")
    message = failure(result)
    assert f"Anthropic: GET {server.base_url}/organizations/cost_report answered HTTP 401" in message
    assert "sk-ant-admin-wrong" not in message


def test_settings_name_a_missing_key_and_a_bad_team_map():
    with pytest.raises(SettingsError, match="FINOPS_SOURCE includes openai: set OPENAI_ADMIN_KEY"):
        from finops_pipeline.sources.registry import build_sources
        build_sources(load_settings({"FINOPS_SOURCE": "openai"}))
    with pytest.raises(SettingsError, match="FINOPS_AI_TEAMS: 'proj_a' is not project=team"):
        load_settings({"FINOPS_AI_TEAMS": "proj_a,proj_b=ml"})


def test_line_items_are_read_leniently_and_prices_by_longest_model_prefix():
    assert parse_openai_line_item("gpt-4o-2024-08-06, input") == ("gpt-4o-2024-08-06", "input")
    assert parse_openai_line_item("gpt-4o-mini, cached input") == ("gpt-4o-mini", "cached_input")
    assert parse_openai_line_item("o3 , Output") == ("o3", "output")
    assert parse_openai_line_item("fine-tuning, training") == ("fine-tuning, training", None)
    assert parse_openai_line_item("Web search tool calls") == ("Web search tool calls", None)
    assert parse_openai_line_item(None) == (None, None)
    assert parse_openai_line_item("dall-e-3, images") == ("dall-e-3", "images")
    assert parse_openai_line_item("tts-1-hd, Characters") == ("tts-1-hd", "audio_characters")
    assert parse_openai_line_item("whisper-1, seconds") == ("whisper-1", "audio_seconds")
    assert parse_openai_line_item("whisper-1, minutes") == ("whisper-1", "audio_seconds")
    assert parse_openai_line_item("gpt-image-1, image input") == ("gpt-image-1", "input")  # tokens, not images
    assert parse_openai_line_item("whisper") == ("whisper", None)
    prices = PriceTable.load()
    assert prices.price("OpenAI", "gpt-4o-mini-2024-07-18", "output") == Decimal("0.6") / 1_000_000
    assert prices.price("OpenAI", "gpt-4o-2024-08-06", "output") == Decimal("10") / 1_000_000
    assert prices.price("Anthropic", "claude-sonnet-4-20250514", "web_search") == Decimal("0.01")
    assert prices.price("OpenAI", "my-own-model", "input") is None
    assert prices.price("OpenAI", "tts-1-hd", "audio_characters") == Decimal("30") / 1_000_000
    assert prices.price("OpenAI", "whisper-1", "audio_seconds") == Decimal("0.006") / 60
    assert prices.price("OpenAI", "dall-e-3", "images") is None
