"""The local sink: one JSON line per custom event, appended and fsynced before deletion."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.sinks.base import ExportResult, format_time
from backend.telemetry.item import TelemetryItem

log = logging.getLogger(__name__)


def event_record(item: TelemetryItem) -> dict[str, Any]:
    """The fields Application Insights receives for `item`, flattened for a JSON line."""
    return {
        "name": item.name,
        "time": format_time(item.timestamp),
        "operation_id": item.operation_id,
        "parent_id": item.parent_id,
        "properties": dict(item.properties),
        "measurements": dict(item.measurements),
    }


class JsonlSink:
    """Appends to `path`: one `write` per batch on an O_APPEND descriptor, under an exclusive lock.

    O_APPEND makes each write land at the end even with several worker processes; the `flock`
    keeps one batch's lines together should the kernel split a large write; `fsync` makes the
    lines durable before the worker deletes their messages.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        """Append `items` as JSON lines and fsync; a failing disk makes them retryable."""
        if not items:
            return ExportResult()
        text = "".join(
            json.dumps(event_record(item), ensure_ascii=False, separators=(",", ":")) + "\n"
            for item in items
        )
        data = text.encode("utf-8")
        try:
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as error:
            log.warning("could not append %d items to %s: %s", len(items), self.path, error)
            self.close()
            return ExportResult.all_retryable(len(items), f"write failed: {error.strerror}")
        return ExportResult.all_accepted(len(items))

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass
