"""The Application Insights sink against the strict stand-in: configuration, splits, sizes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from backend.sinks.appinsights import CONFIGURATION_LOG_INTERVAL_S, AppInsightsSink
from backend.sinks.base import ExportResult
from backend.telemetry.item import TelemetryItem
from backend.telemetry.limits import MARKER, MAX_VALUE_CHARS, TRUNCATED_FIELDS
from common import http
from tools.ingestion_server import IngestionServer, Scripted

WRONG_KEY = "00000000-0000-4000-8000-00000000dead"


def steps(count: int) -> list[TelemetryItem]:
    at = datetime.now(UTC) - timedelta(minutes=5)
    return [
        TelemetryItem(name="WorkflowStep", timestamp=at, measurements={"n": float(n)})
        for n in range(count)
    ]


def numbers(server: IngestionServer) -> list[float]:
    return [e["data"]["baseData"]["measurements"]["n"] for e in server.events()]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_wrong_key_holds_every_item_and_is_logged_loudly_once_per_interval(
    ingestion_server: IngestionServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    sink = AppInsightsSink(ingestion_server.connection_string_with(WRONG_KEY), clock=clock)
    caplog.set_level(logging.ERROR, logger="backend.sinks.appinsights")

    results = [sink.export(steps(3)) for _ in range(3)]
    clock.now += CONFIGURATION_LOG_INTERVAL_S
    results.append(sink.export(steps(3)))
    sink.close()

    assert {result.retryable for result in results} == {(0, 1, 2)}
    assert {(result.accepted, result.rejected) for result in results} == {((), ())}
    assert ingestion_server.requests == [("/v2.1/track", 400)] * 4
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 2
    assert "Invalid instrumentation key (3 of 3 items)" in errors[0]


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 403)])
def test_a_missing_or_wrong_token_holds_the_batch(
    ingestion_server: IngestionServer, token: str | None, status: int
) -> None:
    ingestion_server.require_token("the-right-one")
    session = http.session()
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    sink = AppInsightsSink(ingestion_server.connection_string, session=session)

    result = sink.export(steps(2))
    sink.close()

    assert result.retryable == (0, 1)
    assert result.detail.startswith(f"HTTP {status}: ")
    assert ingestion_server.events() == []


def test_a_track_endpoint_that_is_not_there_holds_the_batch(
    ingestion_server: IngestionServer,
) -> None:
    key = ingestion_server.instrumentation_key
    elsewhere = f"InstrumentationKey={key};IngestionEndpoint={ingestion_server.endpoint}nowhere/"
    sink = AppInsightsSink(elsewhere)

    result = sink.export(steps(2))
    sink.close()

    assert result.retryable == (0, 1)
    assert result.detail.startswith("HTTP 404: no track endpoint")


def test_a_request_refused_as_too_large_is_halved_until_every_item_is_taken_once() -> None:
    server = IngestionServer(max_request_items=50).start()
    sink = AppInsightsSink(server.connection_string)

    result = sink.export(steps(301))
    sink.close()
    server.stop()

    assert result == ExportResult.all_accepted(301)
    assert sorted(numbers(server)) == [float(n) for n in range(301)]
    statuses = [status for _path, status in server.requests]
    assert statuses.count(413) == 7 and statuses.count(200) == 8


def test_a_single_item_still_too_large_is_shrunk_and_sent_with_its_cut_fields_named() -> None:
    server = IngestionServer(max_request_bytes=12_000).start()
    sink = AppInsightsSink(server.connection_string)
    [big] = steps(1)
    big.properties.update(job_name="j" * 8000, step_name="s" * 6000, labels="short")

    result = sink.export([big])
    sink.close()
    server.stop()

    assert result == ExportResult.all_accepted(1)
    assert [status for _path, status in server.requests] == [413, 200]
    [event] = server.events()
    properties = event["data"]["baseData"]["properties"]
    # Halved to about 7 KB: the longest value is cut first, then the next one.
    assert properties[TRUNCATED_FIELDS] == "job_name,step_name"
    assert properties["job_name"].startswith("jjj") and properties["job_name"].endswith(MARKER)
    assert properties["step_name"].startswith("sss") and properties["step_name"].endswith(MARKER)
    assert properties["labels"] == "short"


def test_values_over_the_limit_arrive_cut_and_flagged(ingestion_server: IngestionServer) -> None:
    sink = AppInsightsSink(ingestion_server.connection_string)
    [item] = steps(1)
    item.properties.update(job_name="x" * 20_000, step_name="ok")

    assert sink.export([item]) == ExportResult.all_accepted(1)
    sink.close()

    [event] = ingestion_server.events()
    properties = event["data"]["baseData"]["properties"]
    assert len(properties["job_name"]) == MAX_VALUE_CHARS
    assert properties[TRUNCATED_FIELDS] == "job_name"


def test_a_400_naming_no_item_is_split_to_find_the_item_it_refuses(
    ingestion_server: IngestionServer,
) -> None:
    ingestion_server.script(
        Scripted(400, b""), Scripted(200, accept=True), Scripted(400, b"bad"), Scripted(400, b"?")
    )
    sink = AppInsightsSink(ingestion_server.connection_string)

    result = sink.export(steps(3))
    sink.close()

    # [0,1,2] refused; [0] taken; [1,2] refused; [1] refused alone (so for good); [2] taken.
    assert result.accepted == (0, 2)
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "ingestion refused the item: 400 ?")
    ]
    assert numbers(ingestion_server) == [0.0, 2.0]


def test_a_206_without_a_readable_body_sends_every_item_again(
    ingestion_server: IngestionServer,
) -> None:
    ingestion_server.script(Scripted(206, b"<html>gateway</html>", accept=True))
    sink = AppInsightsSink(ingestion_server.connection_string)

    first = sink.export(steps(2))
    second = sink.export(steps(2))
    sink.close()

    assert first.retryable == (0, 1)
    assert second == ExportResult.all_accepted(2)
    # Nothing said which were taken: both went twice (each keeps its deterministic item id).
    assert sorted(numbers(ingestion_server)) == [0.0, 0.0, 1.0, 1.0]
