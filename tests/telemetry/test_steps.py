"""WorkflowStep events: only from completed jobs, one per step, with their own timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.telemetry.item import TelemetryItem
from backend.telemetry.mapping import to_telemetry
from tools.payloads import envelope_for, in_progress_steps, step, workflow_job_payload

RECEIVED_AT = datetime(2024, 3, 5, 10, 2, 41, tzinfo=UTC)
JOB_COMPLETED = datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC)


def step_properties(number: int, name: str, conclusion: str, result: str) -> dict[str, str]:
    """The properties of one step of the fixture's job."""
    return {
        "step_name": name,
        "step_number": str(number),
        "step_status": "completed",
        "step_conclusion": conclusion,
        "result": result,
        "job_id": "22364958377",
        "job_name": "test",
        "workflow_run_id": "8179265011",
        "run_attempt": "1",
        "workflow_name": "Build",
        "repository_full_name": "octo-org/octo-repo",
    }


def _steps_of(payload: dict[str, Any]) -> list[TelemetryItem]:
    envelope = envelope_for(payload, received_at=RECEIVED_AT)
    items = to_telemetry(envelope, RECEIVED_AT + timedelta(seconds=2))
    return [item for item in items if item.name == "WorkflowStep"]


def test_each_step_of_a_completed_job_is_one_event_in_order() -> None:
    steps = _steps_of(workflow_job_payload())

    assert all(item.properties.pop("item_id") == item.item_id for item in steps)
    assert [(item.properties, item.measurements, item.timestamp) for item in steps] == [
        (
            step_properties(1, "Set up job", "success", "success"),
            {"duration_seconds": 2.0},
            datetime(2024, 3, 5, 10, 0, 13, tzinfo=UTC),
        ),
        (
            step_properties(2, "Run actions/checkout@v4", "success", "success"),
            {"duration_seconds": 2.0},
            datetime(2024, 3, 5, 10, 0, 15, tzinfo=UTC),
        ),
        (
            step_properties(3, "Run tests", "success", "success"),
            {"duration_seconds": 140.0},
            datetime(2024, 3, 5, 10, 2, 35, tzinfo=UTC),
        ),
        (
            step_properties(4, "Complete job", "success", "success"),
            {"duration_seconds": 5.0},
            datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        ),
    ]


CASES = [
    pytest.param(
        step(3, "Upload report", None, None, conclusion="skipped"),
        step_properties(3, "Upload report", "skipped", "skip")
        | {"timing_anomaly": "duration_seconds:missing"},
        {},
        JOB_COMPLETED,
        id="skipped-without-timestamps",
    ),
    pytest.param(
        step(3, "Upload report", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "skipped"),
        step_properties(3, "Upload report", "skipped", "skip")
        | {"timing_anomaly": "duration_seconds:missing"},
        {},
        JOB_COMPLETED,
        id="skipped-with-zero-timestamps",
    ),
    pytest.param(
        step(3, "Upload report", "2024-03-05T10:02:35Z", "2024-03-05T10:02:35Z", "skipped"),
        step_properties(3, "Upload report", "skipped", "skip"),
        {"duration_seconds": 0.0},
        datetime(2024, 3, 5, 10, 2, 35, tzinfo=UTC),
        id="skipped-with-equal-timestamps",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T02:00:13.000-08:00", "2024-03-05T02:02:35.500-08:00"),
        step_properties(2, "Run tests", "success", "success"),
        {"duration_seconds": 142.5},
        datetime(2024, 3, 5, 10, 2, 35, 500000, tzinfo=UTC),
        id="offsets-and-fractions",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T10:00:13Z", "2024-03-05T10:02:35Z", "failure"),
        step_properties(2, "Run tests", "failure", "failure"),
        {"duration_seconds": 142.0},
        datetime(2024, 3, 5, 10, 2, 35, tzinfo=UTC),
        id="failure",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T10:00:13Z", "2024-03-05T10:01:00Z", "cancelled"),
        step_properties(2, "Run tests", "cancelled", "cancellation"),
        {"duration_seconds": 47.0},
        datetime(2024, 3, 5, 10, 1, 0, tzinfo=UTC),
        id="cancelled",
    ),
    pytest.param(
        # The job started at 10:00:10; GitHub's step clock can run ahead of it.
        step(1, "Set up job", "2024-03-05T10:00:05Z", "2024-03-05T10:00:13Z"),
        step_properties(1, "Set up job", "success", "success"),
        {"duration_seconds": 8.0},
        datetime(2024, 3, 5, 10, 0, 13, tzinfo=UTC),
        id="starts-before-its-job",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T10:00:14Z", "2024-03-05T10:00:13Z"),
        step_properties(2, "Run tests", "success", "success")
        | {"timing_anomaly": "duration_seconds:negative"},
        {"duration_seconds": 0.0},
        datetime(2024, 3, 5, 10, 0, 13, tzinfo=UTC),
        id="completed-before-started",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T10:00:13Z", None, conclusion="cancelled"),
        step_properties(2, "Run tests", "cancelled", "cancellation")
        | {"timing_anomaly": "duration_seconds:missing"},
        {},
        JOB_COMPLETED,
        id="never-completed",
    ),
    pytest.param(
        step(2, "Run tests", "2024-03-05T10:00:13Z", "2024-03-05T10:00:14Z")
        | {"name": None, "number": None, "conclusion": None},
        step_properties(1, "", "", ""),
        {"duration_seconds": 1.0},
        datetime(2024, 3, 5, 10, 0, 14, tzinfo=UTC),
        id="null-name-number-and-conclusion",
    ),
]


@pytest.mark.parametrize(("entry", "properties", "measurements", "moment"), CASES)
def test_step_maps_with_its_own_timing(
    entry: dict[str, Any],
    properties: dict[str, str],
    measurements: dict[str, float],
    moment: datetime,
) -> None:
    (item,) = _steps_of(workflow_job_payload(steps=[entry]))

    assert item.properties == {**properties, "item_id": item.item_id}
    assert item.measurements == measurements
    assert item.timestamp == moment


def test_in_progress_job_with_finished_steps_emits_no_steps() -> None:
    payload = workflow_job_payload("in_progress")
    assert payload["workflow_job"]["steps"][0]["conclusion"] == "success"

    items = to_telemetry(envelope_for(payload), RECEIVED_AT)

    assert [item.name for item in items] == ["WorkflowJobInProgress"]


def test_completed_job_with_null_steps_has_none() -> None:
    payload = workflow_job_payload()
    payload["workflow_job"]["steps"] = None

    items = to_telemetry(envelope_for(payload), RECEIVED_AT)

    assert [item.name for item in items] == ["WorkflowJob"]
    assert items[0].measurements["steps_count"] == 0.0


def test_in_progress_steps_fixture_has_finished_and_unfinished_steps() -> None:
    assert [entry["status"] for entry in in_progress_steps()] == [
        "completed",
        "in_progress",
        "queued",
        "queued",
    ]
