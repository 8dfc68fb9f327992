"""Lifecycle events: what is waiting or running now, one event per state change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backend.telemetry.mapping import to_telemetry
from tests.telemetry.test_jobs import job_properties
from tests.telemetry.test_runs import run_properties
from tools.payloads import envelope_for, workflow_job_payload, workflow_run_payload

EXPORTED_AT = datetime(2024, 3, 5, 10, 5, 0, tzinfo=UTC)
QUEUED_JOB = {"conclusion": "", "result": "", "runner_name": "", "runner_id": ""}

CASES = [
    pytest.param(
        workflow_run_payload("requested"),
        "WorkflowRunRequested",
        run_properties(status="queued", conclusion="", result=""),
        {},
        datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC),
        id="run-requested",
    ),
    pytest.param(
        # A re-run keeps `created_at`; its own start is `run_started_at`.
        workflow_run_payload(
            "requested",
            run_attempt=2,
            run_started_at="2024-03-07T09:00:00Z",
            updated_at="2024-03-07T09:00:00Z",
        ),
        "WorkflowRunRequested",
        run_properties(status="queued", conclusion="", result="", run_attempt="2"),
        {},
        datetime(2024, 3, 7, 9, 0, 0, tzinfo=UTC),
        id="run-re-requested",
    ),
    pytest.param(
        workflow_run_payload("in_progress"),
        "WorkflowRunInProgress",
        run_properties(status="in_progress", conclusion="", result=""),
        {},
        datetime(2024, 3, 5, 10, 0, 4, tzinfo=UTC),
        id="run-in-progress",
    ),
    pytest.param(
        workflow_run_payload("in_progress", updated_at=None),
        "WorkflowRunInProgress",
        run_properties(status="in_progress", conclusion="", result=""),
        {},
        datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC),
        id="run-in-progress-without-updated-at",
    ),
    pytest.param(
        workflow_job_payload("queued"),
        "WorkflowJobQueued",
        job_properties(status="queued", runner_group_name="", **QUEUED_JOB),
        {},
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC),
        id="job-queued",
    ),
    pytest.param(
        workflow_job_payload("queued", labels=["self-hosted", "linux", "arm64"]),
        "WorkflowJobQueued",
        job_properties(
            status="queued",
            runner_group_name="",
            labels="self-hosted,linux,arm64",
            is_self_hosted="true",
            **QUEUED_JOB,
        ),
        {},
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC),
        id="job-queued-self-hosted",
    ),
    pytest.param(
        workflow_job_payload("waiting"),
        "WorkflowJobWaiting",
        job_properties(status="waiting", runner_group_name="", **QUEUED_JOB),
        {},
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC),
        id="job-waiting",
    ),
    pytest.param(
        workflow_job_payload("in_progress"),
        "WorkflowJobInProgress",
        job_properties(status="in_progress", conclusion="", result=""),
        {"queue_seconds": 8.0},
        datetime(2024, 3, 5, 10, 0, 10, tzinfo=UTC),
        id="job-in-progress",
    ),
    pytest.param(
        workflow_job_payload("in_progress", created_at="2024-03-05T10:00:11Z"),
        "WorkflowJobInProgress",
        job_properties(
            status="in_progress",
            conclusion="",
            result="",
            timing_anomaly="queue_seconds:negative",
        ),
        {"queue_seconds": 0.0},
        datetime(2024, 3, 5, 10, 0, 10, tzinfo=UTC),
        id="job-in-progress-created-after-started",
    ),
    pytest.param(
        workflow_job_payload("in_progress", started_at=None),
        "WorkflowJobInProgress",
        job_properties(
            status="in_progress",
            conclusion="",
            result="",
            timing_anomaly="queue_seconds:missing",
        ),
        {},
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC),
        id="job-in-progress-without-started-at",
    ),
]


@pytest.mark.parametrize(("payload", "name", "properties", "measurements", "moment"), CASES)
def test_lifecycle_action_maps_to_one_event(
    payload: dict[str, Any],
    name: str,
    properties: dict[str, str],
    measurements: dict[str, float],
    moment: datetime,
) -> None:
    items = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert [item.name for item in items] == [name]
    assert items[0].properties == {
        **properties,
        "item_id": items[0].item_id,
        "received_at": "2024-03-05T10:05:00.000000Z",
    }
    assert items[0].measurements == measurements
    assert items[0].timestamp == moment


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(workflow_run_payload("deleted"), id="run-unknown-action"),
        pytest.param(workflow_job_payload("paused"), id="job-unknown-action"),
        pytest.param(workflow_job_payload(""), id="job-no-action"),
    ],
)
def test_unknown_action_emits_nothing(payload: dict[str, Any]) -> None:
    assert to_telemetry(envelope_for(payload), EXPORTED_AT) == []


def test_job_states_of_equal_time_are_ordered_by_when_they_were_received() -> None:
    # Given a job that waited for an approval, then was queued: both carry `created_at`
    waiting_at = datetime(2024, 3, 5, 10, 0, 1, 250000, tzinfo=UTC)
    queued_at = datetime(2024, 3, 5, 10, 20, 0, tzinfo=UTC)
    (waiting,) = to_telemetry(
        envelope_for(workflow_job_payload("waiting"), received_at=waiting_at), EXPORTED_AT
    )
    (queued,) = to_telemetry(
        envelope_for(workflow_job_payload("queued"), received_at=queued_at), EXPORTED_AT
    )
    # Then their times tie, and their receipt times (microseconds kept) order them
    assert waiting.timestamp == queued.timestamp
    assert waiting.properties["received_at"] == "2024-03-05T10:00:01.250000Z"
    assert waiting.properties["received_at"] < queued.properties["received_at"]


def test_completion_events_carry_no_receipt_time() -> None:
    items = to_telemetry(envelope_for(workflow_job_payload("completed")), EXPORTED_AT)

    assert all("received_at" not in item.properties for item in items)


def test_job_queued_with_missing_times_falls_back_to_received_time() -> None:
    payload = workflow_job_payload("queued", created_at=None)
    received_at = datetime(2024, 3, 5, 10, 0, 3, tzinfo=UTC)

    (item,) = to_telemetry(envelope_for(payload, received_at=received_at), EXPORTED_AT)

    assert item.timestamp == received_at
