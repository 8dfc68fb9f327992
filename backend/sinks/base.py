"""The telemetry sink interface: export a batch, get back which items were accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from backend.telemetry.item import TelemetryItem


@dataclass(frozen=True)
class Rejection:
    """An item the sink refused for good (invalid), by its position in the exported batch."""

    index: int
    reason: str


@dataclass(frozen=True)
class ExportResult:
    """The outcome of one export, by position in the batch: every index is in exactly one group.

    `retryable` items failed transiently (unreachable, timeout, 429, 5xx) and may be exported
    again; `rejected` ones never will succeed; `retry_after_s` is the sink's own hint, if any.
    """

    accepted: tuple[int, ...] = ()
    retryable: tuple[int, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    detail: str = ""
    retry_after_s: float | None = None

    @classmethod
    def all_accepted(cls, count: int) -> ExportResult:
        """Every one of `count` items was accepted."""
        return cls(accepted=tuple(range(count)))

    @classmethod
    def all_retryable(
        cls, count: int, detail: str, retry_after_s: float | None = None
    ) -> ExportResult:
        """None of `count` items got through, for a transient reason."""
        return cls(retryable=tuple(range(count)), detail=detail, retry_after_s=retry_after_s)


class TelemetrySink(Protocol):
    """Where telemetry goes; `export` never raises, its result says what happened."""

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        """Send `items` synchronously and report, per item, whether they were accepted."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, as Application Insights expects."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
