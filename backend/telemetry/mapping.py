"""Turn one queued GitHub delivery into the Application Insights events it stands for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from backend.telemetry import jobs, runs, timing
from backend.telemetry.errors import MappingError
from backend.telemetry.item import TelemetryItem
from common.envelope import Envelope

__all__ = ["MappingError", "at_export", "has_telemetry", "to_telemetry"]

PROCESSING_LAG = "processing_lag_seconds"

Mapper = Callable[[Envelope, datetime], list[TelemetryItem]]

# https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_job
MAPPERS: dict[str, dict[str, Mapper]] = {
    "workflow_run": {
        "requested": runs.requested,
        "in_progress": runs.in_progress,
        "completed": runs.completed,
    },
    "workflow_job": {
        "queued": jobs.queued,
        "waiting": jobs.waiting,
        "in_progress": jobs.in_progress,
        "completed": jobs.completed,
    },
}


def action_of(envelope: Envelope) -> str:
    """Return the delivery's action: the envelope's, else the payload's own."""
    action = envelope.action or envelope.payload.get("action")
    return action if isinstance(action, str) else ""


def has_telemetry(envelope: Envelope) -> bool:
    """Tell whether the delivery's event and action map to any telemetry, without mapping it."""
    return action_of(envelope) in MAPPERS.get(envelope.event, {})


def at_export(item: TelemetryItem, envelope: Envelope, exported_at: datetime) -> TelemetryItem:
    """Return `item` with its `processing_lag_seconds` (if it has one) measured to `exported_at`.

    The mapping measures the lag when it runs; a batch held through an outage is exported
    later, so the lag is measured again right before each export attempt.
    """
    if PROCESSING_LAG not in item.measurements:
        return item
    received_at = timing.as_utc(envelope.received_at)
    lag_s = max((timing.as_utc(exported_at) - received_at).total_seconds(), 0.0)
    return replace(item, measurements={**item.measurements, PROCESSING_LAG: lag_s})


def to_telemetry(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
    """Map a `workflow_run` or `workflow_job` delivery to its telemetry items.

    An action the telemetry has no event for maps to an empty list.

    Args:
        envelope: the delivery as queued (full or reduced payload).
        exported_at: when the items are handed to the exporter (for `processing_lag_seconds`).

    Returns:
        The items in order: a run or job event first, then a job's steps.

    Raises:
        MappingError: the event is not one the telemetry handles, or the payload lacks the ids
            every event needs (`workflow_run.id`, `workflow_job.id`/`run_id`, `repository.id`).
    """
    by_action = MAPPERS.get(envelope.event)
    if by_action is None:
        raise MappingError(f"event `{envelope.event}` is not mapped to telemetry")
    mapper = by_action.get(action_of(envelope))
    if mapper is None:
        return []
    # The item's own id as a property: what its children's `operation_ParentId` points at.
    return [
        replace(item, properties={**item.properties, "item_id": item.item_id})
        for item in mapper(envelope, exported_at)
    ]
