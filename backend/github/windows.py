"""Created-date windows for listing workflow runs under GitHub's cap on filtered lists.

A list of runs filtered by `created` (or `status`, `branch`, ...) returns at most 1,000 runs,
whatever the paging; a window with more is split in two until each half lists fewer.
https://docs.github.com/en/rest/actions/workflow-runs#list-workflow-runs-for-a-repository
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_LISTED_RUNS = 1000
# The windows a backfill starts from; each is listed, split if needed, and checkpointed.
INITIAL_WINDOW = timedelta(days=1)
SECOND = timedelta(seconds=1)


class DateError(ValueError):
    """A --since or --until value that is not a date."""


@dataclass(frozen=True)
class Window:
    """Runs created in [start, end), whole seconds."""

    start: datetime
    end: datetime

    @property
    def query(self) -> str:
        """The `created` filter: GitHub's inclusive range `a..b`."""
        return f"{_iso(self.start)}..{_iso(self.end - SECOND)}"

    @property
    def name(self) -> str:
        """The window's part of a checkpoint name."""
        return f"{_iso(self.start)}..{_iso(self.end)}"

    def halves(self) -> tuple[Window, Window] | None:
        """The window split at its middle second; None for a one-second window."""
        seconds = int((self.end - self.start).total_seconds())
        if seconds < 2:
            return None
        middle = self.start + timedelta(seconds=seconds // 2)
        return Window(self.start, middle), Window(middle, self.end)


def windows(since: datetime, until: datetime, size: timedelta = INITIAL_WINDOW) -> list[Window]:
    """[since, until) cut into consecutive windows of at most `size`."""
    found: list[Window] = []
    start = since
    while start < until:
        end = min(start + size, until)
        found.append(Window(start, end))
        start = end
    return found


def parse_date(text: str) -> datetime:
    """A date (`2024-05-01`, midnight UTC) or an ISO time; a time without an offset is UTC.

    Raises:
        DateError: the text is neither.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DateError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
