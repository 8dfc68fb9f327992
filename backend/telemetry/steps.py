"""Map the steps of a completed job to WorkflowStep events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from backend.telemetry import fields, ids, timing
from backend.telemetry.context import EventContext
from backend.telemetry.item import TelemetryItem
from backend.telemetry.results import result_of

# The job properties each step repeats, so a step can be filtered without a join.
_JOB_KEYS = (
    "job_id",
    "job_name",
    "workflow_run_id",
    "run_attempt",
    "workflow_name",
    "repository_full_name",
)


def entries(job: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the job's step objects in GitHub's order (null steps is none)."""
    value = job.get("steps")
    if not isinstance(value, list):
        return []
    return [entry for entry in value if isinstance(entry, Mapping)]


def to_item(
    step: Mapping[str, Any], position: int, job: EventContext, job_moment: datetime
) -> TelemetryItem:
    """Map one step to a WorkflowStep, at its `completed_at` (else its job's time)."""
    started_at = timing.timestamp(step, "started_at")
    completed_at = timing.timestamp(step, "completed_at")
    timings = timing.Timings()
    timings.interval("duration_seconds", started_at, completed_at)
    # `number` is always sent; the position keeps ids distinct if it ever is not.
    number = fields.text(step, "number") or str(position)
    conclusion = fields.text(step, "conclusion")
    properties = {
        "step_name": fields.text(step, "name"),
        "step_number": number,
        "step_status": fields.text(step, "status"),
        "step_conclusion": conclusion,
        "result": result_of(conclusion),
        **{key: job.properties[key] for key in _JOB_KEYS},
        **timings.properties(),
    }
    return TelemetryItem(
        name="WorkflowStep",
        timestamp=completed_at or job_moment,
        properties=properties,
        measurements=timings.measurements,
        operation_id=job.operation_id,
        operation_name=job.operation_name,
        parent_id=job.job_item_id,
        item_id=ids.item_id("WorkflowStep", job.repository_id, job.job_id, number),
    )
