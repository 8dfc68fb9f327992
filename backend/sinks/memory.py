"""A recording sink for tests: keeps what it accepted and fails when told to."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from backend.sinks.base import ExportResult, Rejection
from backend.telemetry.item import TelemetryItem


class RecordingSink:
    """Accepts items into `items`; `failures` queued results or `reject` make it fail.

    - `fail_next(n)`: the next `n` exports accept nothing and report every item retryable.
    - `failing = True`: every export is retryable until set back to False (an outage).
    - `reject = predicate`: items matching it are rejected as invalid.
    """

    def __init__(self) -> None:
        self.items: list[TelemetryItem] = []
        self.exports: list[list[TelemetryItem]] = []
        self.failing = False
        self.reject: Callable[[TelemetryItem], bool] = lambda _item: False
        self.retry_after_s: float | None = None
        self.closed = False
        self._failures_left = 0
        self._lock = threading.Lock()

    def fail_next(self, count: int) -> None:
        """Make the next `count` exports fail transiently."""
        self._failures_left = count

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        """Record the batch and accept it unless told to fail."""
        with self._lock:
            self.exports.append(list(items))
            if self.failing or self._failures_left > 0:
                self._failures_left = max(self._failures_left - 1, 0)
                return ExportResult.all_retryable(
                    len(items), "sink told to fail", self.retry_after_s
                )
            accepted: list[int] = []
            rejected: list[Rejection] = []
            for index, item in enumerate(items):
                if self.reject(item):
                    rejected.append(Rejection(index, "sink told to reject"))
                else:
                    accepted.append(index)
                    self.items.append(item)
            return ExportResult(accepted=tuple(accepted), rejected=tuple(rejected))

    def close(self) -> None:
        """Remember that the sink was closed."""
        self.closed = True

    @property
    def names(self) -> list[str]:
        """Names of the accepted items, in order."""
        return [item.name for item in self.items]
