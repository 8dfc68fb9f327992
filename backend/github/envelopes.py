"""Envelopes for past runs and jobs, shaped like the live `completed` deliveries GitHub sends.

The REST API's run attempt and job objects are the `workflow_run` and `workflow_job` objects of
the webhook payloads; around them go the sections a delivery carries (repository, organization,
sender), so the backend maps a backfilled event exactly like a live one. The delivery id is
derived from the event's natural key, so enqueuing the same event again builds the same envelope
apart from `received_at`, the time it was enqueued.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_job
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from common.envelope import Envelope

COMPLETED = "completed"
# Fixed, so a backfilled event's delivery id is the same on every run.
_DELIVERY_NAMESPACE = uuid.UUID("5b0c7c0e-3f59-4d8e-9a57-2f3e6f1c9b41")


def delivery_id(key: str) -> str:
    """A GUID-shaped delivery id derived from an event key."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, f"backfill:{key}"))


def _sections(repository: Mapping[str, Any], sender: Any) -> dict[str, Any]:
    """The sections every delivery of a repository's event carries."""
    sections: dict[str, Any] = {"repository": dict(repository)}
    owner = repository.get("owner")
    if isinstance(owner, Mapping) and owner.get("type") == "Organization":
        sections["organization"] = {"id": owner.get("id"), "login": owner.get("login")}
    if isinstance(sender, Mapping):
        sections["sender"] = dict(sender)
    return sections


def _sender(run: Mapping[str, Any]) -> Any:
    """Who a delivery about the run names as its sender: whoever triggered the attempt."""
    return run.get("triggering_actor") or run.get("actor")


def _envelope(
    event: str, key: str, payload: dict[str, Any], repository: Mapping[str, Any], now: datetime
) -> Envelope:
    return Envelope(
        delivery_id=delivery_id(key),
        event=event,
        action=COMPLETED,
        received_at=now,
        payload=payload,
        installation_target_type="repository",
        installation_target_id=str(repository.get("id", "")),
    )


def run_envelope(run: Mapping[str, Any], repository: Mapping[str, Any], now: datetime) -> Envelope:
    """The `workflow_run` `completed` envelope of one run attempt (GET .../attempts/{n})."""
    payload: dict[str, Any] = {
        "action": COMPLETED,
        "workflow_run": dict(run),
        "workflow": {
            "id": run.get("workflow_id"),
            "name": run.get("name"),
            "path": run.get("path"),
        },
        **_sections(repository, _sender(run)),
    }
    key = f"workflow_run:{run.get('id')}:{run.get('run_attempt') or 1}:{COMPLETED}"
    return _envelope("workflow_run", key, payload, repository, now)


def job_envelope(
    job: Mapping[str, Any], run: Mapping[str, Any], repository: Mapping[str, Any], now: datetime
) -> Envelope:
    """The `workflow_job` `completed` envelope of one job of a run attempt."""
    payload: dict[str, Any] = {
        "action": COMPLETED,
        "workflow_job": dict(job),
        **_sections(repository, _sender(run)),
    }
    return _envelope(
        "workflow_job", f"workflow_job:{job.get('id')}:{COMPLETED}", payload, repository, now
    )
