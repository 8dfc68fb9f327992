"""Map `workflow_job` deliveries to WorkflowJob, its steps, and the job lifecycle events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backend.telemetry import fields, ids, steps, timing, window
from backend.telemetry.context import EventContext
from backend.telemetry.item import TelemetryItem
from backend.telemetry.results import result_of
from common.envelope import Envelope

SELF_HOSTED_LABEL = "self-hosted"
# Lifecycle events carry when the frontend received them, which orders states of equal time.
RECEIVED_AT = "received_at"


def read_job(envelope: Envelope) -> EventContext:
    """Read the job's ids and properties, raising MappingError when its ids are missing."""
    payload = envelope.payload
    job = fields.required_section(payload, "workflow_job")
    job_id = fields.required_id(job, "id", "workflow_job")
    run_id = fields.required_id(job, "run_id", "workflow_job")
    repository = fields.repository(payload, job)
    repository_id = fields.required_id(repository, "id", "repository")
    attempt = fields.run_attempt(job)
    labels = fields.strings(job.get("labels"))
    conclusion = fields.text(job, "conclusion")
    is_self_hosted = any(label.lower() == SELF_HOSTED_LABEL for label in labels)
    properties = {
        "job_id": job_id,
        "job_name": fields.text(job, "name"),
        "workflow_run_id": run_id,
        "run_attempt": attempt,
        "workflow_name": fields.text(job, "workflow_name"),
        "repository_full_name": fields.text(repository, "full_name"),
        "status": fields.text(job, "status"),
        "conclusion": conclusion,
        "result": result_of(conclusion),
        "runner_name": fields.text(job, "runner_name"),
        "runner_id": fields.text(job, "runner_id"),
        "runner_group_name": fields.text(job, "runner_group_name"),
        "labels": ",".join(labels),
        "is_self_hosted": "true" if is_self_hosted else "false",
        "head_branch": fields.text(job, "head_branch"),
        "head_sha": fields.text(job, "head_sha"),
        "html_url": fields.text(job, "html_url"),
        "delivery_id": fields.clean(envelope.delivery_id),
    }
    return EventContext(job, repository_id, run_id, attempt, properties, job_id=job_id)


def _never_ran(job: Mapping[str, Any]) -> bool:
    """Tell whether a finished job never got a runner (cancelled or skipped while queued)."""
    return not (job.get("runner_name") or job.get("runner_id") or job.get("steps"))


def completed(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a completed job to one WorkflowJob event followed by one WorkflowStep per step."""
    context = read_job(envelope)
    job = context.subject
    received_at = timing.as_utc(envelope.received_at)
    created_at = timing.timestamp(job, "created_at")
    started_at = timing.timestamp(job, "started_at")
    completed_at = timing.timestamp(job, "completed_at")
    timings = timing.Timings()
    if _never_ran(job):
        # GitHub fills `started_at` even for a job nobody picked up: its whole life was queue.
        timings.measurements["duration_seconds"] = 0.0
        timings.interval("queue_seconds", created_at, completed_at)
    else:
        timings.interval("duration_seconds", started_at, completed_at)
        timings.interval("queue_seconds", created_at, started_at)
    step_entries = steps.entries(job)
    timings.measurements["steps_count"] = float(len(step_entries))
    timings.interval("delivery_lag_seconds", completed_at, received_at)
    timings.interval("processing_lag_seconds", received_at, timing.as_utc(exported_at))
    moment = timing.first(completed_at, started_at, created_at) or received_at
    job_item = TelemetryItem(
        name="WorkflowJob",
        timestamp=moment,
        properties={**context.properties, **timings.properties()},
        measurements=timings.measurements,
        operation_id=context.operation_id,
        operation_name=context.operation_name,
        parent_id=context.run_attempt_id,
        item_id=context.job_item_id,
    )
    step_items = [
        steps.to_item(entry, position, context, moment)
        for position, entry in enumerate(step_entries, start=1)
    ]
    return [job_item, *step_items]


def _lifecycle(
    envelope: Envelope, name: str, keys: tuple[str, ...], with_queue_time: bool = False
) -> list[TelemetryItem]:
    context = read_job(envelope)
    job = context.subject
    timings = timing.Timings()
    if with_queue_time:
        timings.interval(
            "queue_seconds",
            timing.timestamp(job, "created_at"),
            timing.timestamp(job, "started_at"),
        )
    moments = (timing.timestamp(job, key) for key in keys)
    # Queued and Waiting both carry `created_at`: the receipt time orders a job's states.
    received = {RECEIVED_AT: window.iso_time(envelope.received_at)}
    return [
        TelemetryItem(
            name=name,
            timestamp=timing.first(*moments) or timing.as_utc(envelope.received_at),
            properties={**context.properties, **timings.properties(), **received},
            measurements=timings.measurements,
            operation_id=context.operation_id,
            operation_name=context.operation_name,
            parent_id=context.run_attempt_id,
            item_id=ids.item_id(name, context.repository_id, context.job_id),
        )
    ]


def queued(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a queued job to WorkflowJobQueued, at its `created_at`."""
    return _lifecycle(envelope, "WorkflowJobQueued", ("created_at",))


def waiting(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a job waiting for an environment's approval to WorkflowJobWaiting, at `created_at`."""
    return _lifecycle(envelope, "WorkflowJobWaiting", ("created_at",))


def in_progress(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a job a runner picked up to WorkflowJobInProgress, at its `started_at`."""
    keys = ("started_at", "created_at")
    return _lifecycle(envelope, "WorkflowJobInProgress", keys, with_queue_time=True)
