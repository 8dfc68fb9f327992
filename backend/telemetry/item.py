"""The unit of telemetry: one Application Insights custom event, independent of any sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class TelemetryItem:
    """One custom event: a name, its own time, string properties and numeric measurements.

    `operation_id` groups every item of one run attempt and `operation_name` (the workflow's
    name) labels it; `parent_id` points at the run attempt (for a job) or the job (for a
    step); `item_id` is this item's own deterministic id, so a redelivered event maps to the
    same ids.
    """

    name: str
    timestamp: datetime
    properties: dict[str, str] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)
    operation_id: str = ""
    operation_name: str = ""
    parent_id: str = ""
    item_id: str = ""
