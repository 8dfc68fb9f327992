"""Timestamp parsing and interval clamping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.telemetry.mapping import to_telemetry
from backend.telemetry.timing import (
    MAX_INTERVAL_S,
    MAX_RUN_TOTAL_S,
    Timings,
    as_utc,
    first,
    parse_timestamp,
)
from tools.payloads import envelope_for, workflow_job_payload

T0 = datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2024-03-05T10:00:00Z", T0, id="z"),
        pytest.param("2024-03-05T12:00:00+02:00", T0, id="positive-offset"),
        pytest.param("2024-03-05T02:00:00.000-08:00", T0, id="negative-offset-fraction"),
        pytest.param(
            "2024-03-05T10:00:00.123456Z", T0 + timedelta(microseconds=123456), id="micro"
        ),
        pytest.param("2024-03-05T10:00:00.5Z", T0 + timedelta(milliseconds=500), id="tenths"),
        pytest.param("2024-03-05T10:00:00", T0, id="naive-is-utc"),
        pytest.param(" 2024-03-05T10:00:00Z ", T0, id="padded"),
        pytest.param(1709632800, T0, id="epoch-seconds"),
        pytest.param(1709632800.5, T0 + timedelta(milliseconds=500), id="epoch-float"),
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty"),
        pytest.param("yesterday", None, id="garbage"),
        pytest.param("0001-01-01T00:00:00Z", None, id="zero-placeholder"),
        pytest.param("1970-01-01T00:00:00Z", None, id="epoch-zero"),
        pytest.param(0, None, id="epoch-zero-number"),
        pytest.param("0001-01-01T00:00:00+01:00", None, id="before-year-one-in-utc"),
        pytest.param("9999-12-31T23:59:59-01:00", None, id="after-year-9999-in-utc"),
        pytest.param(True, None, id="boolean"),
        pytest.param(10**20, None, id="overflowing-number"),
        pytest.param({"at": "2024-03-05T10:00:00Z"}, None, id="object"),
    ],
)
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    parsed = parse_timestamp(value)

    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo == UTC


def test_as_utc_converts_offsets_and_naive_times() -> None:
    assert as_utc(datetime(2024, 3, 5, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == T0
    assert as_utc(datetime(2024, 3, 5, 10, 0)).tzinfo == UTC


def test_first_skips_unknown_moments() -> None:
    assert first(None, T0, T0 + timedelta(seconds=1)) == T0
    assert first(None, None) is None


@pytest.mark.parametrize(
    ("start", "end", "cap_s", "measurements", "anomaly"),
    [
        pytest.param(T0, T0 + timedelta(seconds=90), MAX_INTERVAL_S, {"d": 90.0}, "", id="normal"),
        pytest.param(T0, T0, MAX_INTERVAL_S, {"d": 0.0}, "", id="zero"),
        pytest.param(
            T0 + timedelta(seconds=1), T0, MAX_INTERVAL_S, {"d": 0.0}, "d:negative", id="negative"
        ),
        pytest.param(None, T0, MAX_INTERVAL_S, {}, "d:missing", id="no-start"),
        pytest.param(T0, None, MAX_INTERVAL_S, {}, "d:missing", id="no-end"),
        pytest.param(
            T0, T0 + timedelta(days=35), MAX_INTERVAL_S, {"d": 3024000.0}, "", id="at-cap"
        ),
        pytest.param(
            T0, T0 + timedelta(days=35, seconds=1), MAX_INTERVAL_S, {}, "d:over_cap", id="over-cap"
        ),
        pytest.param(
            T0, T0 + timedelta(days=60), MAX_RUN_TOTAL_S, {"d": 5184000.0}, "", id="run-total-cap"
        ),
        pytest.param(
            T0, T0 + timedelta(days=3 * 365), MAX_RUN_TOTAL_S, {}, "d:over_cap", id="years"
        ),
    ],
)
def test_interval_is_clamped_capped_and_flagged(
    start: datetime | None,
    end: datetime | None,
    cap_s: float,
    measurements: dict[str, float],
    anomaly: str,
) -> None:
    timings = Timings()

    timings.interval("d", start, end, cap_s)

    assert timings.measurements == measurements
    assert timings.properties() == ({"timing_anomaly": anomaly} if anomaly else {})


def test_anomalies_accumulate_in_order() -> None:
    timings = Timings()

    timings.interval("a", None, T0)
    timings.interval("b", T0, T0 - timedelta(seconds=1))
    timings.interval("c", T0, T0)

    assert timings.properties() == {"timing_anomaly": "a:missing,b:negative"}
    assert timings.measurements == {"b": 0.0, "c": 0.0}


def test_a_step_placeholder_with_an_offset_is_a_missing_time_not_an_error() -> None:
    job = workflow_job_payload(
        "completed",
        steps=[
            {
                "name": "skipped",
                "status": "completed",
                "conclusion": "skipped",
                "number": 1,
                "started_at": "0001-01-01T00:00:00+01:00",
                "completed_at": "0001-01-01T00:00:00+01:00",
            }
        ],
    )

    [_, step] = to_telemetry(envelope_for(job), T0)

    assert step.properties["timing_anomaly"] == "duration_seconds:missing"
