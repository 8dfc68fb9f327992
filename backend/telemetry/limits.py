"""Application Insights' size limits, applied in one place before an item is sent.

Property and measurement names of at most 150 characters, property values of at most 8,192,
an operation name of at most 1,024, and a serialized item of at most 64 KB. A value over its
limit is cut, ends with a marker, and its name is listed in `truncated_fields`; a name over its
limit keeps a prefix and a short hash of the whole name, so two long names stay two.
https://learn.microsoft.com/en-us/azure/azure-monitor/service-limits#application-insights
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace

from backend.telemetry.item import TelemetryItem

MAX_NAME_CHARS = 150
MAX_VALUE_CHARS = 8192
MAX_ITEM_BYTES = 64 * 1024
# The `ai.operation.name` context tag holds at most 1,024 characters.
MAX_OPERATION_NAME_CHARS = 1024
MARKER = "…[truncated]"
TRUNCATED_FIELDS = "truncated_fields"
_NAME_HASH_CHARS = 8

SizeOf = Callable[[TelemetryItem], int]


def short_name(name: str) -> str:
    """Return `name`, or a prefix and a hash of it when it is longer than MAX_NAME_CHARS."""
    if len(name) <= MAX_NAME_CHARS:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:_NAME_HASH_CHARS]
    return f"{name[: MAX_NAME_CHARS - _NAME_HASH_CHARS - 1]}~{digest}"


def cut(value: str, limit: int) -> str:
    """Return `value` cut to `limit` characters, ending with the marker when it was cut."""
    if len(value) <= limit:
        return value
    return value[: max(limit - len(MARKER), 0)] + MARKER[: max(limit, 0)]


def _names_shortened(values: Mapping[str, object]) -> bool:
    return any(len(name) > MAX_NAME_CHARS for name in values)


def _flagged(properties: dict[str, str], names: list[str]) -> dict[str, str]:
    """`properties` with the names of the cut values added to `truncated_fields`."""
    listed = [name for name in properties.get(TRUNCATED_FIELDS, "").split(",") if name]
    listed += [name for name in names if name not in listed]
    if listed:
        properties[TRUNCATED_FIELDS] = cut(",".join(listed), MAX_VALUE_CHARS)
    return properties


def within_limits(
    item: TelemetryItem, size_of: SizeOf | None = None, max_bytes: int = MAX_ITEM_BYTES
) -> TelemetryItem:
    """Return `item` with names, values and (given `size_of`) its size within the limits.

    When the serialized item (`size_of`) is over `max_bytes`, the longest values are cut first,
    each to what the excess leaves of it, until the item fits or no value is left to cut.
    """
    cut_names: list[str] = []
    properties: dict[str, str] = {}
    for name, value in item.properties.items():
        if len(value) > MAX_VALUE_CHARS and name != TRUNCATED_FIELDS:
            cut_names.append(short_name(name))
        properties[short_name(name)] = cut(value, MAX_VALUE_CHARS)
    measurements = {short_name(name): value for name, value in item.measurements.items()}
    if len(item.operation_name) > MAX_OPERATION_NAME_CHARS:
        cut_names.append("operation_name")
    changed = bool(cut_names) or any(
        _names_shortened(values) for values in (item.properties, item.measurements)
    )
    result = item
    if changed:
        result = replace(
            item,
            properties=_flagged(properties, cut_names),
            measurements=measurements,
            operation_name=cut(item.operation_name, MAX_OPERATION_NAME_CHARS),
        )
    return result if size_of is None else shrink(result, size_of, max_bytes)


def shrink(item: TelemetryItem, size_of: SizeOf, max_bytes: int) -> TelemetryItem:
    """Cut the longest property values of `item` until `size_of(item) <= max_bytes`."""
    size = size_of(item)
    while size > max_bytes:
        candidates = [name for name in item.properties if name != TRUNCATED_FIELDS]
        if not candidates:
            return item
        longest = max(candidates, key=lambda name: len(item.properties[name]))
        value = item.properties[longest]
        if len(value) <= len(MARKER):
            return item
        # Each character is at least one byte: dropping `excess` of them (and the marker's
        # room) removes at least the excess, or the next round cuts again.
        keep = max(len(value) - (size - max_bytes) - len(MARKER), len(MARKER))
        properties = dict(item.properties)
        properties[longest] = cut(value, keep)
        item = replace(item, properties=_flagged(properties, [longest]))
        size = size_of(item)
    return item
