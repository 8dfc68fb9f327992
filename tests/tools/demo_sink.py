"""The JSONL sink's lines for a demo day, as the backend would write them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from backend.sinks.jsonl import event_record
from backend.telemetry.mapping import to_telemetry
from backend.telemetry.window import place
from common.envelope import Envelope
from common.reduction import reduce_payload
from tools.demo_day import build_scenario

# How long each delivery takes from GitHub to the frontend, and from the frontend to export.
DELIVERY_LAG = timedelta(seconds=1)
PROCESSING_LAG = timedelta(seconds=2)


def sink_lines(seed: int, runs: int, now: datetime) -> list[dict[str, Any]]:
    """Every line the sink would hold after the backend mapped each demo delivery on arrival."""
    scenario = build_scenario(seed, runs, now=now)
    lines: list[dict[str, Any]] = []
    for index, delivery in enumerate(scenario.deliveries):
        received_at = delivery.at + DELIVERY_LAG
        envelope = Envelope(
            delivery_id=f"d{index}",
            event=delivery.event,
            action=delivery.payload["action"],
            received_at=received_at,
            payload=reduce_payload(delivery.event, delivery.payload),
        )
        exported_at = received_at + PROCESSING_LAG
        for item in to_telemetry(envelope, exported_at):
            lines.append(event_record(place(item, exported_at)))
    return lines
