"""The Application Insights sink against the local ingestion server."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.sinks import build_sink, disable_statsbeat_by_default
from backend.sinks.appinsights import SDK_VERSION, AppInsightsSink, parse_target, requests_of
from backend.sinks.base import ExportResult, Rejection
from backend.sinks.ingestion import classify
from backend.telemetry.item import TelemetryItem
from tools.ingestion_server import IngestionServer

T0 = datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC)
# What the sink's clock says in tests that fix it; the stand-in checks against its own clock.
NOW = datetime.now(UTC).replace(microsecond=0)


def item(name: str = "WorkflowJob", seconds: float = 150.0, at: datetime = T0) -> TelemetryItem:
    return TelemetryItem(
        name=name,
        timestamp=at,
        properties={"workflow_name": "Build", "result": "success"},
        measurements={"duration_seconds": seconds},
        operation_id="862089ad" * 4,
        operation_name="Build",
        parent_id="db987d6f9b7c0ac3",
        item_id="61574112bbc7dde7",
    )


def test_items_arrive_as_custom_events_with_time_role_operation_and_product(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0, now=lambda: NOW)
    recent = NOW - timedelta(hours=3)

    result = sink.export([item(at=recent)])

    assert result == ExportResult.all_accepted(1)
    [envelope] = ingestion_server.accepted
    assert ingestion_server.requests == [("/v2.1/track", 200)]
    assert envelope["name"] == "Microsoft.ApplicationInsights.Event"
    assert envelope["iKey"] == ingestion_server.instrumentation_key
    assert envelope["time"] == recent.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert envelope["data"] == {
        "baseType": "EventData",
        "baseData": {
            "ver": 2,
            "name": "WorkflowJob",
            "properties": {
                "workflow_name": "Build",
                "result": "success",
                "event_time": envelope["time"],
            },
            "measurements": {"duration_seconds": 150.0},
        },
    }
    tags = envelope["tags"]
    assert tags["ai.cloud.role"] == "github-telemetry-backend"
    assert tags["ai.operation.id"] == "862089ad" * 4
    assert tags["ai.operation.name"] == "Build"
    assert tags["ai.operation.parentId"] == "db987d6f9b7c0ac3"
    assert tags["ai.internal.sdkVersion"] == SDK_VERSION
    sink.close()


def test_the_sdk_version_names_this_product_at_the_version_of_pyproject() -> None:
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert SDK_VERSION == f"{project['name']}:{project['version']}"


def test_an_item_older_than_the_window_is_sent_at_export_time_with_its_true_time_kept(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0, now=lambda: NOW)
    three_days_ago = NOW - timedelta(days=3)

    result = sink.export([item(at=three_days_ago)])
    sink.close()

    assert result == ExportResult.all_accepted(1)
    [envelope] = ingestion_server.events()
    properties = envelope["data"]["baseData"]["properties"]
    assert envelope["time"] == NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert properties["event_time"] == three_days_ago.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert properties["is_late"] == "true"
    assert envelope["data"]["baseData"]["measurements"]["late_seconds"] == 3 * 86400.0


def test_a_206_answer_accepts_the_unlisted_items_and_sorts_the_rest(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)
    ingestion_server.reject(lambda e: e["data"]["baseData"]["name"] == "Bad")

    result = sink.export([item("Good"), item("Bad"), item("Good")])

    assert result.accepted == (0, 2)
    assert result.retryable == ()
    assert [r.index for r in result.rejected] == [1]
    assert result.rejected[0].reason == "ingestion refused the item: 400 rejected by test"
    sink.close()


IN_30_S = NOW + timedelta(seconds=30)


@pytest.mark.parametrize(
    ("status", "retry_after", "hint"),
    [
        (503, None, None),
        (500, None, None),
        (429, "7", 7.0),
        (429, IN_30_S.strftime("%a, %d %b %Y %H:%M:%S GMT"), 30.0),
        (439, "3600", 3600.0),
        (402, None, None),
    ],
)
def test_a_transient_answer_makes_every_item_retryable(
    ingestion_server: IngestionServer, status: int, retry_after: str | None, hint: float | None
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0, now=lambda: NOW)
    ingestion_server.answer(status, retry_after)

    result = sink.export([item(), item()])

    assert result.retryable == (0, 1)
    assert (result.accepted, result.rejected) == ((), ())
    assert result.retry_after_s == hint
    assert ingestion_server.accepted == []
    sink.close()


def test_a_refused_connection_is_retryable_not_an_exception(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)
    ingestion_server.refuse()

    result = sink.export([item()])

    assert result.retryable == (0,)
    assert result.detail == "ingestion unreachable: ConnectionError"
    ingestion_server.recover()
    assert sink.export([item()]).accepted == (0,)
    sink.close()


KEY_ERROR = b'{"errors": [%s]}' % b",".join(
    b'{"index": %d, "statusCode": 400, "message": "Invalid instrumentation key"}' % i
    for i in range(2)
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"", ExportResult(accepted=(0, 1))),
        (
            206,
            b'{"errors": [{"index": 1, "statusCode": 429, "message": "slow"}]}',
            ExportResult(accepted=(0,), retryable=(1,), detail="HTTP 206: 1 of 2 accepted"),
        ),
        (
            400,
            b'{"errors": [{"index": 0, "statusCode": 400, "message": "bad"}]}',
            ExportResult(
                retryable=(1,),
                rejected=(Rejection(0, "ingestion refused the item: 400 bad"),),
                detail="HTTP 400: 0 of 2 accepted",
            ),
        ),
        (
            400,
            KEY_ERROR,
            ExportResult.all_retryable(
                2,
                "HTTP 400: Invalid instrumentation key (2 of 2 items): check the "
                "InstrumentationKey of APPLICATIONINSIGHTS_CONNECTION_STRING",
            ),
        ),
        (
            206,
            b'{"itemsReceived": 2, "itemsAccepted": 2, "errors": [',
            ExportResult(accepted=(0, 1)),
        ),
        (
            206,
            b"not json",
            ExportResult.all_retryable(
                2, "ingestion answered HTTP 206 without a readable body: every item is sent again"
            ),
        ),
        (413, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 413")),
        (400, b"not json", ExportResult.all_retryable(2, "ingestion answered HTTP 400")),
        (502, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 502")),
        (408, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 408")),
    ],
)
def test_ingestion_answers_map_to_item_outcomes(
    status: int, body: bytes, expected: ExportResult
) -> None:
    assert classify(2, status, body, None).result == expected


@pytest.mark.parametrize(
    ("status", "body", "split", "configuration"),
    [
        (413, b"", True, ""),
        (400, b"", True, ""),
        (400, b'{"itemsReceived": 2, "itemsAccepted": 0, "errors": []}', True, ""),
        (400, KEY_ERROR, False, "Invalid instrumentation key"),
        (401, b"", False, "HTTP 401: authentication required"),
        (403, b"", False, "HTTP 403: authentication refused"),
        (404, b"", False, "HTTP 404: no track endpoint"),
        (439, b"", False, "HTTP 439: the daily cap is reached"),
        (503, b"", False, ""),
    ],
)
def test_a_refused_request_is_split_and_a_configuration_error_named(
    status: int, body: bytes, split: bool, configuration: str
) -> None:
    answer = classify(2, status, body, None)

    assert answer.split is split
    assert (configuration in answer.configuration) and bool(configuration) == bool(
        answer.configuration
    )
    assert answer.result.retryable == (0, 1)


def test_the_connection_string_endpoint_is_honoured_and_the_key_kept_secret() -> None:
    key = "00000000-0000-4000-8000-000000000001"
    target = parse_target(f"InstrumentationKey={key};IngestionEndpoint=https://x.example/;")

    assert target.track_url == "https://x.example/v2.1/track"
    assert key not in repr(target)
    with pytest.raises(ValueError) as raised:
        parse_target("InstrumentationKey=not-a-guid-secret")
    assert "not-a-guid-secret" not in str(raised.value)


def test_statsbeat_is_off_unless_the_operator_chose() -> None:
    env: dict[str, str] = {}
    disable_statsbeat_by_default(env)
    chosen = {"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "false"}
    disable_statsbeat_by_default(chosen)

    assert env == {"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"}
    assert chosen == {"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "false"}


def test_build_sink_picks_app_insights_only_with_a_connection_string(
    ingestion_server: IngestionServer, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from backend.settings import load_backend_settings

    monkeypatch.setenv("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
    base = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    local = load_backend_settings({**base, "TELEMETRY_FILE": str(Path(str(tmp_path)) / "t.jsonl")})
    remote = load_backend_settings(
        {
            **base,
            "BACKEND_APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion_server.connection_string,
        }
    )

    assert type(build_sink(local)).__name__ == "JsonlSink"
    assert type(build_sink(remote)).__name__ == "AppInsightsSink"


def test_a_large_batch_goes_in_requests_of_at_most_1000_items_with_answers_mapped_back(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=5.0)
    bad = {5.0, 1500.0, 2499.0}
    ingestion_server.reject(lambda e: e["data"]["baseData"]["measurements"]["n"] in bad)
    items = [
        TelemetryItem(name="WorkflowStep", timestamp=T0, measurements={"n": float(i)})
        for i in range(2500)
    ]

    result = sink.export(items)
    sink.close()

    assert len(ingestion_server.requests) == 3
    assert [r.index for r in result.rejected] == [5, 1500, 2499]
    assert result.accepted == tuple(i for i in range(2500) if float(i) not in bad)
    assert result.retryable == ()
    sent = [e["data"]["baseData"]["measurements"]["n"] for e in ingestion_server.events()]
    assert sent == [float(i) for i in range(2500) if float(i) not in bad]


def test_requests_are_bounded_in_bytes_and_an_oversized_item_goes_alone() -> None:
    parts = [(0, b"x" * 400), (1, b"x" * 400), (2, b"x" * 2000), (3, b"x" * 10), (4, b"x" * 10)]

    requests = requests_of(parts, max_items=2, max_bytes=1000)

    assert [[index for index, _ in request] for request in requests] == [[0, 1], [2], [3, 4]]


def test_after_a_failed_request_the_rest_are_retryable_without_waiting(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=5.0)
    ingestion_server.answer(503, retry_after="7")

    result = sink.export([item() for _ in range(1500)])
    sink.close()

    assert ingestion_server.requests == [("/v2.1/track", 503)]
    assert (result.accepted, result.retryable) == ((), tuple(range(1500)))
    assert result.retry_after_s == 7.0


def test_an_item_that_cannot_be_encoded_is_rejected_and_the_rest_sent(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)
    broken = TelemetryItem(name="WorkflowJob", timestamp=T0, properties={"job_name": "b \ud800"})

    result = sink.export([item("Good"), broken, item("Good")])
    sink.close()

    assert (result.accepted, result.retryable) == ((0, 2), ())
    assert result.rejected == (Rejection(1, "not serialisable: UnicodeEncodeError"),)
    assert [e["data"]["baseData"]["name"] for e in ingestion_server.events()] == ["Good", "Good"]
