"""Print the text report of a JSONL sink file and write its dashboard."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from backend.settings import DEFAULT_TELEMETRY_FILE
from tools.report import (
    DEFAULT_DASHBOARD_FILE,
    format_report,
    read_items,
    span,
    summarize_items,
    write_dashboard,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of a JSONL sink file and write the dashboard beside it."""
    parser = argparse.ArgumentParser(description="Summarize the local telemetry sink.")
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_TELEMETRY_FILE)
    parser.add_argument("--html", type=Path, default=DEFAULT_DASHBOARD_FILE, help="dashboard file")
    parser.add_argument(
        "--now", type=datetime.fromisoformat, help="the moment 'now' means (ISO 8601, UTC)"
    )
    args = parser.parse_args(argv)
    if not args.file.exists():
        print(f"{args.file} does not exist yet: run `make run` and `make demo` first")
        return 1
    items = read_items(args.file)
    print(span(items))
    print(format_report(summarize_items(items)))
    print()
    print(f"dashboard: {write_dashboard(items, args.html, args.now)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
