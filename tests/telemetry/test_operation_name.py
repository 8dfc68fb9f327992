"""Every event of a run attempt carries the workflow's name as its operation name."""

from __future__ import annotations

from datetime import UTC, datetime

from backend.telemetry.item import TelemetryItem
from backend.telemetry.limits import MARKER, MAX_OPERATION_NAME_CHARS, within_limits
from backend.telemetry.mapping import to_telemetry
from tools.payloads import (
    WORKFLOW_NAME,
    envelope_for,
    workflow_job_payload,
    workflow_run_payload,
)

NOW = datetime(2024, 3, 5, 10, 5, tzinfo=UTC)


def test_runs_jobs_steps_and_lifecycle_events_share_the_workflow_name_as_operation_name() -> None:
    payloads = [
        ("workflow_run", workflow_run_payload("completed")),
        ("workflow_run", workflow_run_payload("requested")),
        ("workflow_job", workflow_job_payload("completed")),
        ("workflow_job", workflow_job_payload("queued")),
    ]
    items = [
        item
        for event, payload in payloads
        for item in to_telemetry(envelope_for(payload, event=event), NOW)
    ]

    assert len(items) == 8
    assert {item.operation_name for item in items} == {WORKFLOW_NAME}


def test_an_operation_name_over_1024_characters_is_cut_and_flagged() -> None:
    item = TelemetryItem(name="WorkflowRun", timestamp=NOW, operation_name="w" * 5000)

    result = within_limits(item)

    assert result.operation_name == "w" * (MAX_OPERATION_NAME_CHARS - len(MARKER)) + MARKER
    assert result.properties == {"truncated_fields": "operation_name"}
