"""WorkflowRun events from completed `workflow_run` deliveries, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.telemetry.mapping import to_telemetry
from tools import payloads
from tools.payloads import envelope_for, pull_request, workflow_run_payload

RECEIVED_AT = datetime(2024, 3, 5, 10, 4, 31, tzinfo=UTC)
EXPORTED_AT = datetime(2024, 3, 5, 10, 4, 33, tzinfo=UTC)


def run_properties(**changes: str) -> dict[str, str]:
    """The properties of the fixture's successful run, with `changes` applied."""
    return {
        "workflow_run_id": "8179265011",
        "run_attempt": "1",
        "run_number": "562",
        "workflow_id": "159038",
        "workflow_name": "Build",
        "repository_full_name": "octo-org/octo-repo",
        "repository_id": "186853002",
        "status": "completed",
        "conclusion": "success",
        "result": "success",
        "event": "push",
        "head_branch": "main",
        "head_sha": "9f2c4d1e7b3a5c6d8e0f1a2b3c4d5e6f7a8b9c0d",
        "actor": "monalisa",
        "triggered_by": "monalisa",
        "pull_requests": "",
        "html_url": "https://github.com/octo-org/octo-repo/actions/runs/8179265011",
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        **changes,
    }


def _null_names() -> dict[str, Any]:
    payload = workflow_run_payload(name=None, head_branch=None, actor=None, triggering_actor=None)
    del payload["workflow"]
    return payload


def _offsets() -> dict[str, Any]:
    return workflow_run_payload(
        created_at="2024-03-05T12:00:00+02:00",
        run_started_at="2024-03-05T12:00:00+02:00",
        updated_at="2024-03-05T12:04:30.250+02:00",
    )


SUCCESS_MEASUREMENTS = {
    "duration_seconds": 270.0,
    "total_duration_seconds": 270.0,
    "delivery_lag_seconds": 1.0,
    "processing_lag_seconds": 2.0,
}

CASES = [
    pytest.param(
        workflow_run_payload(),
        RECEIVED_AT,
        run_properties(),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="success",
    ),
    pytest.param(
        workflow_run_payload(conclusion="failure"),
        RECEIVED_AT,
        run_properties(conclusion="failure", result="failure"),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="failure",
    ),
    pytest.param(
        workflow_run_payload(conclusion="cancelled", updated_at="2024-03-05T10:01:00Z"),
        RECEIVED_AT,
        run_properties(conclusion="cancelled", result="cancellation"),
        {
            "duration_seconds": 60.0,
            "total_duration_seconds": 60.0,
            "delivery_lag_seconds": 211.0,
            "processing_lag_seconds": 2.0,
        },
        datetime(2024, 3, 5, 10, 1, 0, tzinfo=UTC),
        id="cancelled",
    ),
    pytest.param(
        workflow_run_payload(conclusion="timed_out"),
        RECEIVED_AT,
        run_properties(conclusion="timed_out", result="timeout"),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="timed-out",
    ),
    pytest.param(
        workflow_run_payload(
            conclusion="action_required", event="pull_request", updated_at="2024-03-05T10:00:01Z"
        ),
        RECEIVED_AT,
        run_properties(conclusion="action_required", result="failure", event="pull_request"),
        {
            "duration_seconds": 1.0,
            "total_duration_seconds": 1.0,
            "delivery_lag_seconds": 270.0,
            "processing_lag_seconds": 2.0,
        },
        datetime(2024, 3, 5, 10, 0, 1, tzinfo=UTC),
        id="action-required",
    ),
    pytest.param(
        workflow_run_payload(conclusion="startup_failure", updated_at="2024-03-05T10:00:00Z"),
        RECEIVED_AT,
        run_properties(conclusion="startup_failure", result="error"),
        {
            "duration_seconds": 0.0,
            "total_duration_seconds": 0.0,
            "delivery_lag_seconds": 271.0,
            "processing_lag_seconds": 2.0,
        },
        datetime(2024, 3, 5, 10, 0, 0, tzinfo=UTC),
        id="startup-failure",
    ),
    pytest.param(
        workflow_run_payload(
            run_attempt=2,
            run_started_at="2024-03-07T09:00:00Z",
            updated_at="2024-03-07T09:03:00Z",
            triggering_actor=payloads.account("hubot", 7654321),
            previous_attempt_url=(
                "https://api.github.com/repos/octo-org/octo-repo/actions/runs/8179265011/attempts/1"
            ),
        ),
        datetime(2024, 3, 7, 9, 3, 4, tzinfo=UTC),
        run_properties(run_attempt="2", triggered_by="hubot"),
        {
            "duration_seconds": 180.0,
            # 2024-03-05T10:00:00Z to 2024-03-07T09:03:00Z: 47 h 3 min.
            "total_duration_seconds": 169380.0,
            "delivery_lag_seconds": 4.0,
            "processing_lag_seconds": 2.0,
        },
        datetime(2024, 3, 7, 9, 3, 0, tzinfo=UTC),
        id="re-run-two-days-later",
    ),
    pytest.param(
        _null_names(),
        RECEIVED_AT,
        run_properties(workflow_name="", head_branch="", actor="", triggered_by="octocat"),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="null-names-and-branch",
    ),
    pytest.param(
        workflow_run_payload(name=None),
        RECEIVED_AT,
        run_properties(),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="null-name-falls-back-to-workflow",
    ),
    pytest.param(
        workflow_run_payload(
            event="pull_request",
            head_branch="feature/faster-tests",
            pull_requests=[pull_request(1347, 1761309830), pull_request(1290, 1700000001)],
        ),
        RECEIVED_AT,
        run_properties(
            event="pull_request", head_branch="feature/faster-tests", pull_requests="1347,1290"
        ),
        SUCCESS_MEASUREMENTS,
        datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        id="pull-request",
    ),
    pytest.param(
        _offsets(),
        RECEIVED_AT,
        run_properties(),
        {
            "duration_seconds": 270.25,
            "total_duration_seconds": 270.25,
            "delivery_lag_seconds": 0.75,
            "processing_lag_seconds": 2.0,
        },
        datetime(2024, 3, 5, 10, 4, 30, 250000, tzinfo=UTC),
        id="offsets-and-fractions",
    ),
]


@pytest.mark.parametrize(("payload", "received_at", "properties", "measurements", "moment"), CASES)
def test_completed_run_maps_to_one_workflow_run_event(
    payload: dict[str, Any],
    received_at: datetime,
    properties: dict[str, str],
    measurements: dict[str, float],
    moment: datetime,
) -> None:
    exported_at = received_at + timedelta(seconds=2)

    items = to_telemetry(envelope_for(payload, received_at=received_at), exported_at)

    assert [item.name for item in items] == ["WorkflowRun"]
    assert items[0].properties == {**properties, "item_id": items[0].item_id}
    assert items[0].measurements == measurements
    assert items[0].timestamp == moment
    assert items[0].timestamp.tzinfo == UTC


ANOMALIES = [
    pytest.param(
        {"run_started_at": "2024-03-05T10:04:31Z"},
        {
            "duration_seconds": 0.0,
            "total_duration_seconds": 270.0,
            "delivery_lag_seconds": 1.0,
            "processing_lag_seconds": 2.0,
        },
        "duration_seconds:negative",
        id="updated-before-run-started",
    ),
    pytest.param(
        {"run_started_at": None},
        {
            "total_duration_seconds": 270.0,
            "delivery_lag_seconds": 1.0,
            "processing_lag_seconds": 2.0,
        },
        "duration_seconds:missing",
        id="no-run-started-at",
    ),
    pytest.param(
        {"created_at": "2019-03-05T10:00:00Z"},
        {
            "duration_seconds": 270.0,
            "delivery_lag_seconds": 1.0,
            "processing_lag_seconds": 2.0,
        },
        "total_duration_seconds:over_cap",
        id="created-years-earlier",
    ),
    pytest.param(
        {"updated_at": "2024-03-05T10:04:35Z"},
        {
            "duration_seconds": 275.0,
            "total_duration_seconds": 275.0,
            "delivery_lag_seconds": 0.0,
            "processing_lag_seconds": 2.0,
        },
        "delivery_lag_seconds:negative",
        id="delivered-before-completion-clock-skew",
    ),
]


@pytest.mark.parametrize(("overrides", "measurements", "anomaly"), ANOMALIES)
def test_inconsistent_run_timestamps_are_clamped_and_flagged(
    overrides: dict[str, Any], measurements: dict[str, float], anomaly: str
) -> None:
    payload = workflow_run_payload(**overrides)

    (item,) = to_telemetry(envelope_for(payload, received_at=RECEIVED_AT), EXPORTED_AT)

    assert item.measurements == measurements
    assert item.properties == run_properties(timing_anomaly=anomaly, item_id=item.item_id)


def test_processing_lag_is_clamped_when_exported_before_received() -> None:
    payload = workflow_run_payload()

    (item,) = to_telemetry(
        envelope_for(payload, received_at=RECEIVED_AT), payloads.RECEIVED_AT.replace(hour=9)
    )

    assert item.measurements["processing_lag_seconds"] == 0.0
    assert item.properties["timing_anomaly"] == "processing_lag_seconds:negative"
