"""The natural identity of an event, for deduplicating redeliveries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.telemetry.keys import event_key
from backend.telemetry.mapping import MappingError
from tools.payloads import envelope_for, workflow_job_payload, workflow_run_payload


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        pytest.param(workflow_job_payload(), "workflow_job:22364958377:completed", id="job"),
        pytest.param(
            workflow_job_payload("queued"), "workflow_job:22364958377:queued", id="job-queued"
        ),
        pytest.param(
            workflow_job_payload(id=22400000001, run_attempt=2),
            "workflow_job:22400000001:completed",
            id="job-re-run",
        ),
        pytest.param(workflow_run_payload(), "workflow_run:8179265011:1:completed", id="run"),
        pytest.param(
            workflow_run_payload(run_attempt=2), "workflow_run:8179265011:2:completed", id="re-run"
        ),
        pytest.param(
            workflow_run_payload(id=8179265011.0, run_attempt=2.0),
            "workflow_run:8179265011:2:completed",
            id="integral-floats",
        ),
        pytest.param(
            workflow_run_payload("requested", run_attempt=None),
            "workflow_run:8179265011:1:requested",
            id="run-without-attempt",
        ),
    ],
)
def test_event_key(payload: dict[str, Any], key: str) -> None:
    assert event_key(envelope_for(payload)) == key


def test_redeliveries_share_a_key() -> None:
    first = envelope_for(workflow_job_payload())
    again = dataclasses.replace(
        first,
        delivery_id="0b9e1c5e-cc79-11e3-81ab-4c9367dc0958",
        received_at=datetime(2024, 3, 6, 8, 0, 0, tzinfo=UTC),
    )

    assert event_key(again) == event_key(first)


@pytest.mark.parametrize(
    ("envelope_payload", "event", "reason"),
    [
        pytest.param({"action": "completed"}, "workflow_job", "no `workflow_job`", id="no-job"),
        pytest.param(
            {"action": "completed", "workflow_run": {"id": None}},
            "workflow_run",
            "`workflow_run.id` is missing",
            id="null-run-id",
        ),
        pytest.param(
            {"action": "opened"}, "issues", "event `issues` has no event key", id="issues"
        ),
    ],
)
def test_event_key_without_an_id_is_a_mapping_error(
    envelope_payload: dict[str, Any], event: str, reason: str
) -> None:
    with pytest.raises(MappingError, match=reason):
        event_key(envelope_for(envelope_payload, event=event))
