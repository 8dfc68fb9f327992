"""The time window Application Insights accepts, and where an event outside it is placed.

The ingestion refuses an item whose time is more than 48 hours old (per item, 400 "103: Field
'time' on type 'Envelope' is older than the allowed min date"). A batch held through a long
outage, a GitHub redelivery (up to 3 days later) and a backfill all carry older times, so such
an item is sent at the time it is exported; its true time stays in `event_time`, which every
shipped query uses, and `late_seconds` says how far it was moved. Times far in the future (a
skewed clock) are moved the same way.
https://learn.microsoft.com/en-us/azure/azure-monitor/app/data-model-complete
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from backend.telemetry.item import TelemetryItem
from backend.telemetry.timing import as_utc

# One hour short of the service's 48 h: room for clock skew and for the time a request takes.
MAX_AGE_S = 47 * 3600.0
MAX_AHEAD_S = 24 * 3600.0
EVENT_TIME = "event_time"
IS_LATE = "is_late"
LATE_SECONDS = "late_seconds"


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z` (what KQL's `todatetime` reads)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_outside(moment: datetime, exported_at: datetime) -> bool:
    """Tell whether an item timed `moment` would be refused when sent at `exported_at`."""
    late_s = (as_utc(exported_at) - as_utc(moment)).total_seconds()
    return not -MAX_AHEAD_S <= late_s <= MAX_AGE_S


def place(item: TelemetryItem, exported_at: datetime) -> TelemetryItem:
    """Return `item` with `event_time`, sent at `exported_at` if its own time is out of window.

    A moved item also carries `is_late` = "true" and the measurement `late_seconds` (export
    time minus true time: negative for a time in the future). Its ids do not change.
    """
    properties = {**item.properties, EVENT_TIME: iso_time(item.timestamp)}
    if not is_outside(item.timestamp, exported_at):
        return replace(item, properties=properties)
    late_s = (as_utc(exported_at) - as_utc(item.timestamp)).total_seconds()
    return replace(
        item,
        timestamp=as_utc(exported_at),
        properties={**properties, IS_LATE: "true"},
        measurements={**item.measurements, LATE_SECONDS: late_s},
    )
