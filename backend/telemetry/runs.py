"""Map `workflow_run` deliveries to WorkflowRun and the run lifecycle events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.telemetry import fields, ids, timing
from backend.telemetry.item import TelemetryItem
from backend.telemetry.results import result_of
from common.envelope import Envelope


@dataclass(frozen=True)
class _RunAttempt:
    """The parts of a `workflow_run` delivery every run event needs."""

    run: Mapping[str, Any]
    repository_id: str
    run_id: str
    attempt: str
    properties: dict[str, str]

    @property
    def operation_id(self) -> str:
        """The operation every item of this run attempt belongs to."""
        return ids.operation_id(self.repository_id, self.run_id, self.attempt)


def _read(envelope: Envelope) -> _RunAttempt:
    payload = envelope.payload
    run = fields.required_section(payload, "workflow_run")
    repository = fields.repository(payload, run)
    run_id = fields.required_id(run, "id", "workflow_run")
    repository_id = fields.required_id(repository, "id", "repository")
    attempt = fields.run_attempt(run)
    conclusion = fields.text(run, "conclusion")
    # `name` is nullable; the workflow object (when sent) still names it.
    workflow_name = fields.text(run, "name") or fields.text(
        fields.section(payload, "workflow"), "name"
    )
    pull_requests = run.get("pull_requests")
    numbers = (
        [entry.get("number") for entry in pull_requests if isinstance(entry, Mapping)]
        if isinstance(pull_requests, list)
        else []
    )
    properties = {
        "workflow_run_id": run_id,
        "run_attempt": attempt,
        "run_number": fields.text(run, "run_number"),
        "workflow_id": fields.text(run, "workflow_id"),
        "workflow_name": workflow_name,
        "repository_full_name": fields.text(repository, "full_name"),
        "repository_id": repository_id,
        "status": fields.text(run, "status"),
        "conclusion": conclusion,
        "result": result_of(conclusion),
        "event": fields.text(run, "event"),
        "head_branch": fields.text(run, "head_branch"),
        "head_sha": fields.text(run, "head_sha"),
        "actor": fields.login(run, "actor"),
        "triggered_by": fields.login(run, "triggering_actor") or fields.login(payload, "sender"),
        "pull_requests": fields.joined(numbers),
        "html_url": fields.text(run, "html_url"),
        "delivery_id": fields.clean(envelope.delivery_id),
    }
    return _RunAttempt(run, repository_id, run_id, attempt, properties)


def completed(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a completed run to one WorkflowRun event, timestamped at its `updated_at`."""
    attempt = _read(envelope)
    run = attempt.run
    received_at = timing.as_utc(envelope.received_at)
    updated_at = timing.timestamp(run, "updated_at")
    created_at = timing.timestamp(run, "created_at")
    timings = timing.Timings()
    timings.interval("duration_seconds", timing.timestamp(run, "run_started_at"), updated_at)
    timings.interval("total_duration_seconds", created_at, updated_at, timing.MAX_RUN_TOTAL_S)
    timings.interval("delivery_lag_seconds", updated_at, received_at)
    timings.interval("processing_lag_seconds", received_at, timing.as_utc(exported_at))
    item_id = ids.run_attempt_id(attempt.repository_id, attempt.run_id, attempt.attempt)
    return [
        TelemetryItem(
            name="WorkflowRun",
            timestamp=timing.first(updated_at, created_at) or received_at,
            properties={**attempt.properties, **timings.properties()},
            measurements=timings.measurements,
            operation_id=attempt.operation_id,
            parent_id="",
            item_id=item_id,
        )
    ]


def _lifecycle(envelope: Envelope, name: str, keys: tuple[str, ...]) -> list[TelemetryItem]:
    attempt = _read(envelope)
    moments = (timing.timestamp(attempt.run, key) for key in keys)
    return [
        TelemetryItem(
            name=name,
            timestamp=timing.first(*moments) or timing.as_utc(envelope.received_at),
            properties=attempt.properties,
            operation_id=attempt.operation_id,
            parent_id="",
            item_id=ids.item_id(name, attempt.repository_id, attempt.run_id, attempt.attempt),
        )
    ]


def requested(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a requested run to WorkflowRunRequested, at the attempt's `run_started_at`."""
    keys = ("run_started_at", "created_at", "updated_at")
    return _lifecycle(envelope, "WorkflowRunRequested", keys)


def in_progress(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a run that started to WorkflowRunInProgress, at its `updated_at`."""
    keys = ("updated_at", "run_started_at", "created_at")
    return _lifecycle(envelope, "WorkflowRunInProgress", keys)
