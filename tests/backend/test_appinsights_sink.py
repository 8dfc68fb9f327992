"""The Application Insights sink against the local ingestion server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.sinks import build_sink, disable_statsbeat_by_default
from backend.sinks.appinsights import AppInsightsSink, parse_target, requests_of
from backend.sinks.base import ExportResult, Rejection
from backend.sinks.ingestion import classify
from backend.telemetry.item import TelemetryItem
from tools.ingestion_server import IngestionServer

T0 = datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC)


def item(name: str = "WorkflowJob", seconds: float = 150.0) -> TelemetryItem:
    return TelemetryItem(
        name=name,
        timestamp=datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        properties={"workflow_name": "Build", "result": "success"},
        measurements={"duration_seconds": seconds},
        operation_id="862089ad" * 4,
        parent_id="db987d6f9b7c0ac3",
        item_id="61574112bbc7dde7",
    )


def test_items_arrive_as_custom_events_with_time_role_and_operation(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)

    result = sink.export([item()])

    assert result == ExportResult.all_accepted(1)
    [envelope] = ingestion_server.accepted
    assert ingestion_server.requests == [("/v2.1/track", 200)]
    assert envelope["name"] == "Microsoft.ApplicationInsights.Event"
    assert envelope["iKey"] == ingestion_server.instrumentation_key
    assert envelope["time"] == "2024-03-05T10:02:40.000000Z"
    assert envelope["data"] == {
        "baseType": "EventData",
        "baseData": {
            "ver": 2,
            "name": "WorkflowJob",
            "properties": {"workflow_name": "Build", "result": "success"},
            "measurements": {"duration_seconds": 150.0},
        },
    }
    tags = envelope["tags"]
    assert tags["ai.cloud.role"] == "github-telemetry-backend"
    assert tags["ai.operation.id"] == "862089ad" * 4
    assert tags["ai.operation.parentId"] == "db987d6f9b7c0ac3"
    sink.close()


def test_a_206_answer_accepts_the_unlisted_items_and_sorts_the_rest(
    ingestion_server: IngestionServer,
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)
    ingestion_server.reject(lambda e: e["data"]["baseData"]["name"] == "Bad")

    result = sink.export([item("Good"), item("Bad"), item("Good")])

    assert result.accepted == (0, 2)
    assert result.retryable == ()
    assert [r.index for r in result.rejected] == [1]
    assert "400 rejected by test" in result.rejected[0].reason
    sink.close()


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (429, "7"), (500, None)])
def test_a_transient_answer_makes_every_item_retryable(
    ingestion_server: IngestionServer, status: int, retry_after: str | None
) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string, timeout_s=2.0)
    ingestion_server.answer(status, retry_after)

    result = sink.export([item(), item()])

    assert result.retryable == (0, 1)
    assert (result.accepted, result.rejected) == ((), ())
    assert result.retry_after_s == (float(retry_after) if retry_after else None)
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
                rejected=(
                    Rejection(0, "ingestion rejected the item: 400 bad"),
                    Rejection(1, "ingestion answered 400"),
                ),
                detail="HTTP 400: 0 of 2 accepted",
            ),
        ),
        (
            400,
            b'{"errors": [{"index": 1, "statusCode": 503, "message": "busy"}]}',
            ExportResult(
                retryable=(1,),
                rejected=(Rejection(0, "ingestion answered 400"),),
                detail="HTTP 400: 0 of 2 accepted",
            ),
        ),
        *[
            (
                status,
                body,
                ExportResult(
                    rejected=(
                        Rejection(0, f"ingestion answered {status}"),
                        Rejection(1, f"ingestion answered {status}"),
                    ),
                    detail=f"HTTP {status}: 0 of 2 accepted",
                ),
            )
            for status, body in [
                (400, b"not json"),
                (400, b'{"itemsReceived": 2, "itemsAccepted": 0, "errors": []}'),
                (413, b'{"errors": [{"index": 7, "statusCode": 400, "message": "?"}]}'),
            ]
        ],
        (206, b"not json", ExportResult.all_retryable(2, "ingestion answered HTTP 206")),
        (401, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 401")),
        (402, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 402")),
        (502, b"", ExportResult.all_retryable(2, "ingestion answered HTTP 502")),
    ],
)
def test_ingestion_answers_map_to_item_outcomes(
    status: int, body: bytes, expected: ExportResult
) -> None:
    assert classify(2, status, body, None) == expected


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
