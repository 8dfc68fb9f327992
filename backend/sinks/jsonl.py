"""The local sink: one JSON line per custom event, appended and fsynced before deletion."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from backend.sinks.base import ExportResult, Rejection, format_time
from backend.telemetry import limits, window
from backend.telemetry.item import TelemetryItem
from common.envelope import utc_now

log = logging.getLogger(__name__)


def event_record(item: TelemetryItem) -> dict[str, Any]:
    """The fields Application Insights receives for `item`, flattened for a JSON line."""
    return {
        "name": item.name,
        "time": format_time(item.timestamp),
        "operation_id": item.operation_id,
        "operation_name": item.operation_name,
        "parent_id": item.parent_id,
        "properties": dict(item.properties),
        "measurements": dict(item.measurements),
    }


class JsonlSink:
    """Appends to `path`: one `write` per batch on an O_APPEND descriptor, under an exclusive lock.

    O_APPEND makes each write land at the end even with several worker processes; the `flock`
    keeps one batch's lines together should the kernel split a large write; `fsync` makes the
    lines durable before the worker deletes their messages. Items are placed in time and cut to
    size exactly as the Application Insights sink sends them.
    """

    def __init__(self, path: Path, now: Callable[[], datetime] = utc_now) -> None:
        self.path = path
        self._now = now
        self._fd: int | None = None

    def _descriptor(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        """Append `items` as JSON lines and fsync; a failing disk makes them retryable.

        An item that cannot be serialised is rejected (its message goes to poison): it would
        fail the same way on every retry.
        """
        if not items:
            return ExportResult()
        lines: list[bytes] = []
        accepted: list[int] = []
        rejected: list[Rejection] = []
        exported_at = self._now()
        for index, item in enumerate(items):
            placed = limits.within_limits(window.place(item, exported_at))
            try:
                record = json.dumps(event_record(placed), ensure_ascii=False, separators=(",", ":"))
                lines.append(record.encode("utf-8") + b"\n")
            except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
                rejected.append(Rejection(index, f"not serialisable: {type(error).__name__}"))
            else:
                accepted.append(index)
        if not lines:
            return ExportResult(rejected=tuple(rejected), detail="nothing serialisable")
        try:
            self._append(b"".join(lines))
        except OSError as error:
            log.warning("could not append %d items to %s: %s", len(lines), self.path, error)
            self.close()
            return ExportResult(
                retryable=tuple(accepted),
                rejected=tuple(rejected),
                detail=f"write failed: {error.strerror}",
            )
        return ExportResult(accepted=tuple(accepted), rejected=tuple(rejected))

    def _append(self, data: bytes) -> None:
        """Write `data` at the end under the lock; on failure cut the file back to its old end."""
        fd = self._descriptor()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError:
                # A short write then an error would leave half a line for the retry to follow.
                os.ftruncate(fd, start)
                os.fsync(fd)
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass
