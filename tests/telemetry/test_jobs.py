"""WorkflowJob events from completed `workflow_job` deliveries, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.telemetry.mapping import to_telemetry
from tools.payloads import envelope_for, step, workflow_job_payload

RECEIVED_AT = datetime(2024, 3, 5, 10, 2, 41, tzinfo=UTC)

SELF_HOSTED: dict[str, Any] = {
    "labels": ["self-hosted", "linux", "x64", "gpu"],
    "runner_id": 42,
    "runner_name": "gpu-runner-03",
    "runner_group_id": 5,
    "runner_group_name": "GPU runners",
}
NO_RUNNER: dict[str, Any] = {
    "runner_id": None,
    "runner_name": None,
    "runner_group_id": None,
    "runner_group_name": None,
}


def job_properties(**changes: str) -> dict[str, str]:
    """The properties of the fixture's successful job, with `changes` applied."""
    return {
        "job_id": "22364958377",
        "job_name": "test",
        "workflow_run_id": "8179265011",
        "run_attempt": "1",
        "workflow_name": "Build",
        "repository_full_name": "octo-org/octo-repo",
        "status": "completed",
        "conclusion": "success",
        "result": "success",
        "runner_name": "GitHub Actions 7",
        "runner_id": "7",
        "runner_group_name": "GitHub Actions",
        "labels": "ubuntu-latest",
        "is_self_hosted": "false",
        "head_branch": "main",
        "head_sha": "9f2c4d1e7b3a5c6d8e0f1a2b3c4d5e6f7a8b9c0d",
        "html_url": "https://github.com/octo-org/octo-repo/actions/runs/8179265011/job/22364958377",
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        **changes,
    }


def _measurements(duration: float, queue: float, steps: float, lag: float) -> dict[str, float]:
    return {
        "duration_seconds": duration,
        "queue_seconds": queue,
        "steps_count": steps,
        "delivery_lag_seconds": lag,
        "processing_lag_seconds": 2.0,
    }


FAILED_STEPS = [
    step(1, "Set up job", "2024-03-05T10:00:11Z", "2024-03-05T10:00:13Z"),
    step(2, "Run tests", "2024-03-05T10:00:13Z", "2024-03-05T10:02:35Z", conclusion="failure"),
    step(3, "Upload report", None, None, conclusion="skipped"),
    step(4, "Complete job", "2024-03-05T10:02:35Z", "2024-03-05T10:02:40Z"),
]
CANCELLED_STEPS = [
    step(1, "Set up job", "2024-03-05T10:00:11Z", "2024-03-05T10:00:13Z"),
    step(2, "Run tests", "2024-03-05T10:00:13Z", "2024-03-05T10:01:00Z", conclusion="cancelled"),
    step(3, "Complete job", "2024-03-05T10:01:00Z", "2024-03-05T10:01:05Z"),
]
RERUN_STEPS = [
    step(1, "Set up job", "2024-03-07T09:00:21Z", "2024-03-07T09:00:23Z"),
    step(2, "Run tests", "2024-03-07T09:00:23Z", "2024-03-07T09:02:30Z"),
]

CASES = [
    pytest.param(
        workflow_job_payload(),
        job_properties(),
        _measurements(150.0, 8.0, 4.0, 1.0),
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        RECEIVED_AT,
        id="success",
    ),
    pytest.param(
        workflow_job_payload(steps=FAILED_STEPS, conclusion="failure"),
        job_properties(conclusion="failure", result="failure"),
        _measurements(150.0, 8.0, 4.0, 1.0),
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        RECEIVED_AT,
        id="failure",
    ),
    pytest.param(
        # GitHub fills `started_at` with `created_at` for a job no runner ever took.
        workflow_job_payload(
            steps=[],
            conclusion="cancelled",
            started_at="2024-03-05T10:00:02Z",
            completed_at="2024-03-05T10:01:02Z",
            **NO_RUNNER,
        ),
        job_properties(
            conclusion="cancelled",
            result="cancellation",
            runner_name="",
            runner_id="",
            runner_group_name="",
        ),
        _measurements(0.0, 60.0, 0.0, 99.0),
        datetime(2024, 3, 5, 10, 1, 2, tzinfo=UTC),
        RECEIVED_AT,
        id="cancelled-before-start",
    ),
    pytest.param(
        workflow_job_payload(
            steps=CANCELLED_STEPS, conclusion="cancelled", completed_at="2024-03-05T10:01:05Z"
        ),
        job_properties(conclusion="cancelled", result="cancellation"),
        _measurements(55.0, 8.0, 3.0, 96.0),
        datetime(2024, 3, 5, 10, 1, 5, tzinfo=UTC),
        RECEIVED_AT,
        id="cancelled-after-start",
    ),
    pytest.param(
        workflow_job_payload(
            steps=[],
            conclusion="skipped",
            started_at="2024-03-05T10:00:02Z",
            completed_at="2024-03-05T10:00:02Z",
            **NO_RUNNER,
        ),
        job_properties(
            conclusion="skipped",
            result="skip",
            runner_name="",
            runner_id="",
            runner_group_name="",
        ),
        _measurements(0.0, 0.0, 0.0, 159.0),
        datetime(2024, 3, 5, 10, 0, 2, tzinfo=UTC),
        RECEIVED_AT,
        id="skipped",
    ),
    pytest.param(
        workflow_job_payload(
            steps=[step(1, "Train", "2024-03-05T10:00:12Z", "2024-03-05T16:00:10Z", "cancelled")],
            conclusion="timed_out",
            completed_at="2024-03-05T16:00:10Z",
            **SELF_HOSTED,
        ),
        job_properties(
            conclusion="timed_out",
            result="timeout",
            runner_name="gpu-runner-03",
            runner_id="42",
            runner_group_name="GPU runners",
            labels="self-hosted,linux,x64,gpu",
            is_self_hosted="true",
        ),
        _measurements(21600.0, 8.0, 1.0, 1.0),
        datetime(2024, 3, 5, 16, 0, 10, tzinfo=UTC),
        datetime(2024, 3, 5, 16, 0, 11, tzinfo=UTC),
        id="timed-out-self-hosted",
    ),
    pytest.param(
        workflow_job_payload(
            steps=RERUN_STEPS,
            id=22400000001,
            run_attempt=2,
            html_url="https://github.com/octo-org/octo-repo/actions/runs/8179265011/job/22400000001",
            created_at="2024-03-07T09:00:03Z",
            started_at="2024-03-07T09:00:20Z",
            completed_at="2024-03-07T09:02:30Z",
        ),
        job_properties(
            job_id="22400000001",
            run_attempt="2",
            html_url="https://github.com/octo-org/octo-repo/actions/runs/8179265011/job/22400000001",
        ),
        _measurements(130.0, 17.0, 2.0, 1.0),
        datetime(2024, 3, 7, 9, 2, 30, tzinfo=UTC),
        datetime(2024, 3, 7, 9, 2, 31, tzinfo=UTC),
        id="re-run-two-days-later",
    ),
    pytest.param(
        workflow_job_payload(name=None, workflow_name=None, head_branch=None, **NO_RUNNER),
        job_properties(
            job_name="",
            workflow_name="",
            head_branch="",
            runner_name="",
            runner_id="",
            runner_group_name="",
        ),
        _measurements(150.0, 8.0, 4.0, 1.0),
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        RECEIVED_AT,
        id="null-names-branch-and-runner",
    ),
    pytest.param(
        workflow_job_payload(labels=None),
        job_properties(labels=""),
        _measurements(150.0, 8.0, 4.0, 1.0),
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        RECEIVED_AT,
        id="null-labels",
    ),
    pytest.param(
        workflow_job_payload(labels=["Self-Hosted", "Windows"]),
        job_properties(labels="Self-Hosted,Windows", is_self_hosted="true"),
        _measurements(150.0, 8.0, 4.0, 1.0),
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        RECEIVED_AT,
        id="self-hosted-label-any-case",
    ),
    pytest.param(
        workflow_job_payload(
            created_at="2024-03-05T11:00:02+01:00",
            started_at="2024-03-05T11:00:10.500+01:00",
            completed_at="2024-03-05T10:02:40.750Z",
        ),
        job_properties(),
        _measurements(150.25, 8.5, 4.0, 0.25),
        datetime(2024, 3, 5, 10, 2, 40, 750000, tzinfo=UTC),
        RECEIVED_AT,
        id="offsets-and-fractions",
    ),
]


@pytest.mark.parametrize(("payload", "properties", "measurements", "moment", "received_at"), CASES)
def test_completed_job_maps_to_a_workflow_job_event_first(
    payload: dict[str, Any],
    properties: dict[str, str],
    measurements: dict[str, float],
    moment: datetime,
    received_at: datetime,
) -> None:
    exported_at = received_at + timedelta(seconds=2)

    items = to_telemetry(envelope_for(payload, received_at=received_at), exported_at)

    job = items[0]
    assert job.name == "WorkflowJob"
    assert job.properties == {**properties, "item_id": job.item_id}
    assert job.measurements == measurements
    assert job.timestamp == moment
    assert [item.name for item in items[1:]] == ["WorkflowStep"] * int(measurements["steps_count"])


ANOMALIES = [
    pytest.param(
        {"created_at": "2024-03-05T10:00:11Z"},
        _measurements(150.0, 0.0, 4.0, 1.0),
        "queue_seconds:negative",
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        id="created-a-second-after-started",
    ),
    pytest.param(
        {"completed_at": "2024-03-05T10:00:09Z"},
        {
            "duration_seconds": 0.0,
            "queue_seconds": 8.0,
            "steps_count": 4.0,
            "delivery_lag_seconds": 152.0,
            "processing_lag_seconds": 2.0,
        },
        "duration_seconds:negative",
        datetime(2024, 3, 5, 10, 0, 9, tzinfo=UTC),
        id="completed-before-started",
    ),
    pytest.param(
        {"completed_at": None},
        {"queue_seconds": 8.0, "steps_count": 4.0, "processing_lag_seconds": 2.0},
        "duration_seconds:missing,delivery_lag_seconds:missing",
        datetime(2024, 3, 5, 10, 0, 10, tzinfo=UTC),
        id="no-completed-at",
    ),
    pytest.param(
        {"started_at": "not a time"},
        {
            "steps_count": 4.0,
            "delivery_lag_seconds": 1.0,
            "processing_lag_seconds": 2.0,
        },
        "duration_seconds:missing,queue_seconds:missing",
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        id="unparseable-started-at",
    ),
    pytest.param(
        {"started_at": "2021-03-05T10:00:10Z"},
        {
            "queue_seconds": 0.0,
            "steps_count": 4.0,
            "delivery_lag_seconds": 1.0,
            "processing_lag_seconds": 2.0,
        },
        "duration_seconds:over_cap,queue_seconds:negative",
        datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC),
        id="started-years-before",
    ),
    pytest.param(
        {
            "steps": [],
            "conclusion": "cancelled",
            "started_at": "2024-03-05T10:00:02Z",
            "completed_at": "2024-03-05T10:00:01Z",
            **NO_RUNNER,
        },
        _measurements(0.0, 0.0, 0.0, 160.0),
        "queue_seconds:negative",
        datetime(2024, 3, 5, 10, 0, 1, tzinfo=UTC),
        id="never-ran-completed-before-created",
    ),
]


@pytest.mark.parametrize(("overrides", "measurements", "anomaly", "moment"), ANOMALIES)
def test_inconsistent_job_timestamps_are_clamped_and_flagged(
    overrides: dict[str, Any], measurements: dict[str, float], anomaly: str, moment: datetime
) -> None:
    payload = workflow_job_payload(**overrides)

    items = to_telemetry(
        envelope_for(payload, received_at=RECEIVED_AT), RECEIVED_AT + timedelta(seconds=2)
    )

    job = items[0]
    assert job.measurements == measurements
    assert job.properties["timing_anomaly"] == anomaly
    assert job.timestamp == moment
    assert all(value >= 0 for value in job.measurements.values())
