"""Map `workflow_run` deliveries to WorkflowRun and the run lifecycle events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from backend.telemetry import fields, ids, timing, window
from backend.telemetry.context import EventContext
from backend.telemetry.item import TelemetryItem
from backend.telemetry.jobs import RECEIVED_AT
from backend.telemetry.results import result_of
from common.envelope import Envelope


def read_run(envelope: Envelope) -> EventContext:
    """Read the run's ids and properties, raising MappingError when its ids are missing."""
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
    return EventContext(run, repository_id, run_id, attempt, properties)


def completed(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a completed run to one WorkflowRun event, timestamped at its `updated_at`."""
    context = read_run(envelope)
    run = context.subject
    received_at = timing.as_utc(envelope.received_at)
    updated_at = timing.timestamp(run, "updated_at")
    created_at = timing.timestamp(run, "created_at")
    timings = timing.Timings()
    timings.interval("duration_seconds", timing.timestamp(run, "run_started_at"), updated_at)
    timings.interval("total_duration_seconds", created_at, updated_at, timing.MAX_RUN_TOTAL_S)
    timings.interval("delivery_lag_seconds", updated_at, received_at)
    timings.interval("processing_lag_seconds", received_at, timing.as_utc(exported_at))
    return [
        TelemetryItem(
            name="WorkflowRun",
            timestamp=timing.first(updated_at, created_at) or received_at,
            properties={**context.properties, **timings.properties()},
            measurements=timings.measurements,
            operation_id=context.operation_id,
            operation_name=context.operation_name,
            parent_id="",
            item_id=context.run_attempt_id,
        )
    ]


def _lifecycle(envelope: Envelope, name: str, keys: tuple[str, ...]) -> list[TelemetryItem]:
    context = read_run(envelope)
    moments = (timing.timestamp(context.subject, key) for key in keys)
    return [
        TelemetryItem(
            name=name,
            timestamp=timing.first(*moments) or timing.as_utc(envelope.received_at),
            properties={**context.properties, RECEIVED_AT: window.iso_time(envelope.received_at)},
            operation_id=context.operation_id,
            operation_name=context.operation_name,
            parent_id="",
            item_id=ids.item_id(name, context.repository_id, context.run_id, context.attempt),
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
