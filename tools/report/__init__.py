"""`make report`: the local JSONL sink as text tables and a dashboard, as the queries define.

The text report (`text`) is what `make demo` checks against what it sent; the dashboard
(`charts`, `html`) draws one chart per query of docs/queries/ from the figures in
`definitions`. Both read the sink through `sink`, which places events at `event_time` and
counts each `item_id` once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.report import charts, html
from tools.report.definitions import percentile
from tools.report.sink import event_time, events, read_items, span
from tools.report.text import (
    JobFact,
    RunFact,
    Summary,
    format_report,
    summarize,
    summarize_expected,
    summarize_items,
)

DEFAULT_DASHBOARD_FILE = Path("var") / "report.html"

__all__ = [
    "DEFAULT_DASHBOARD_FILE",
    "JobFact",
    "RunFact",
    "Summary",
    "event_time",
    "format_report",
    "percentile",
    "read_items",
    "span",
    "summarize",
    "summarize_expected",
    "summarize_items",
    "write_dashboard",
]


def write_dashboard(
    items: Iterable[Mapping[str, Any]], path: Path, now: datetime | None = None
) -> Path:
    """Write the dashboard of sink `items` as of `now` (default: the current time) to `path`."""
    listed = list(items)
    moment = now or datetime.now(UTC)
    return html.write(path, charts.build(events(listed), moment), span(listed), moment)
