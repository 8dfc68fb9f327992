"""The natural identity of a delivery, for recognising the same event delivered twice."""

from __future__ import annotations

from backend.telemetry import fields
from backend.telemetry.errors import MappingError
from backend.telemetry.mapping import action_of
from common.envelope import Envelope


def event_key(envelope: Envelope) -> str:
    """Return the event's identity, e.g. "workflow_job:123:completed".

    A job is its id and action (job ids are new per attempt); a run is its id, attempt and
    action ("workflow_run:456:2:completed"). Deliveries of the same event share the key
    whatever their delivery id.

    Raises:
        MappingError: the event is not `workflow_run`/`workflow_job`, or its id is missing.
    """
    payload = envelope.payload
    action = action_of(envelope)
    if envelope.event == "workflow_job":
        job = fields.required_section(payload, "workflow_job")
        return f"workflow_job:{fields.required_id(job, 'id', 'workflow_job')}:{action}"
    if envelope.event == "workflow_run":
        run = fields.required_section(payload, "workflow_run")
        run_id = fields.required_id(run, "id", "workflow_run")
        return f"workflow_run:{run_id}:{fields.run_attempt(run)}:{action}"
    raise MappingError(f"event `{envelope.event}` has no event key")
