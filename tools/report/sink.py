"""Reading the local JSONL sink: items as sent, placed at their event time, each counted once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Event:
    """One sink item: its name, when it happened, when it was sent, properties, measurements."""

    name: str
    time: datetime
    sent: datetime
    properties: Mapping[str, str] = field(default_factory=dict)
    measurements: Mapping[str, float] = field(default_factory=dict)

    def prop(self, key: str) -> str:
        """A property as a string; `""` when it is absent, as `tostring()` gives in KQL."""
        return str(self.properties.get(key, ""))

    def measure(self, key: str) -> float | None:
        """A measurement, or None when it is absent (KQL's null)."""
        value = self.measurements.get(key)
        return None if value is None else float(value)

    @property
    def workflow(self) -> str:
        """The workflow's key: repository and workflow name, as the text report shows it."""
        return f"{self.prop('repository_full_name')} {self.prop('workflow_name')}"


def _parse(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def event_time(item: Mapping[str, Any]) -> datetime | None:
    """When the event happened: its `event_time` property, else (older lines) its `time`."""
    properties: Mapping[str, Any] = item.get("properties") or {}
    for text in (properties.get("event_time"), item.get("time")):
        moment = _parse(text)
        if moment is not None:
            return moment
    return None


def events(items: Iterable[Mapping[str, Any]]) -> list[Event]:
    """The items as events, one per `item_id`: a copy delivered twice keeps the same id.

    Like `summarize arg_max(timestamp, *) by item_id` in the queries, the copy sent last is
    kept; an item without an id (an older line) counts as itself, and one without a time is
    left out.
    """
    kept: dict[object, Event] = {}
    for position, item in enumerate(items):
        moment = event_time(item)
        if moment is None:
            continue
        properties = {k: str(v) for k, v in (item.get("properties") or {}).items()}
        event = Event(
            name=str(item.get("name", "")),
            time=moment,
            sent=_parse(item.get("time")) or moment,
            properties=properties,
            measurements=dict(item.get("measurements") or {}),
        )
        key: object = properties.get("item_id") or position
        if key not in kept or kept[key].sent <= event.sent:
            kept[key] = event
    return list(kept.values())


def span(items: Iterable[Mapping[str, Any]]) -> str:
    """One line naming the first and last event time of `items`."""
    moments = sorted(moment for moment in map(event_time, items) if moment is not None)
    if not moments:
        return "No events."
    first, last = (moment.strftime("%Y-%m-%d %H:%M UTC") for moment in (moments[0], moments[-1]))
    return f"{len(moments)} events that happened from {first} to {last}"


def read_items(path: Path) -> list[dict[str, Any]]:
    """Read the JSONL sink, skipping lines that are not JSON objects."""
    items: list[dict[str, Any]] = []
    if not path.exists():
        return items
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict):
                items.append(item)
    return items
