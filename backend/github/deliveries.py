"""A hook's delivery log as GitHub's REST API lists it: attempts, grouped by guid.

Each attempt (the first delivery and every redelivery) is one item of the list, with its own
`id`; attempts of one event share a `guid`.
https://docs.github.com/en/rest/repos/webhooks#list-deliveries-for-a-repository-webhook
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.telemetry.timing import parse_timestamp
from common.envelope import Envelope

KEPT_EVENTS = frozenset({"workflow_run", "workflow_job"})


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: its id, guid, time, HTTP status and event."""

    id: int
    guid: str
    delivered_at: datetime
    status_code: int
    event: str
    action: str

    @property
    def succeeded(self) -> bool:
        """True when our endpoint answered 2xx."""
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Delivery:
    """Every listed attempt of one guid, newest first."""

    guid: str
    attempts: tuple[Attempt, ...]

    @property
    def succeeded(self) -> bool:
        """True when any attempt was answered 2xx."""
        return any(attempt.succeeded for attempt in self.attempts)

    @property
    def newest(self) -> Attempt:
        """The latest attempt: the one to redeliver, and the one that shows a redelivery landed."""
        return max(self.attempts, key=lambda attempt: attempt.id)


def parse_attempt(item: Mapping[str, Any]) -> Attempt | None:
    """One list item as an Attempt; None for an item without an id, guid or time."""
    delivered_at = parse_timestamp(item.get("delivered_at"))
    delivery_id, guid = item.get("id"), item.get("guid")
    if not isinstance(delivery_id, int) or not isinstance(guid, str) or delivered_at is None:
        return None
    status_code = item.get("status_code")
    return Attempt(
        id=delivery_id,
        guid=guid,
        delivered_at=delivered_at,
        status_code=status_code if isinstance(status_code, int) else 0,
        event=str(item.get("event") or ""),
        action=str(item.get("action") or ""),
    )


def group(attempts: Iterable[Attempt]) -> list[Delivery]:
    """Attempts grouped by guid, in the order each guid was first met."""
    by_guid: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    return [Delivery(guid, tuple(found)) for guid, found in by_guid.items()]


def envelope_of(detail: Mapping[str, Any], attempt: Attempt, now: datetime) -> Envelope | None:
    """The envelope the frontend would have built from an attempt's stored request.

    `detail` is the body of GET .../deliveries/{id}; its `request.payload` is what GitHub sent.
    None when the payload is missing or not a JSON object.
    """
    request = detail.get("request")
    payload = request.get("payload") if isinstance(request, Mapping) else None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if not isinstance(payload, dict):
        return None
    action = payload.get("action")
    return Envelope(
        delivery_id=attempt.guid,
        event=attempt.event,
        action=action if isinstance(action, str) else attempt.action,
        received_at=now,
        payload=payload,
    )
