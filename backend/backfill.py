"""`python -m backend.backfill`: enqueue a repository's past runs, attempts, jobs and steps.

python -m backend.backfill --repo OWNER/NAME --since DATE [--until DATE]
                           [--workflow NAME] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from backend.github.command import Context, repository, run_command
from backend.github.history import Backfill
from backend.github.windows import DateError, parse_date
from common.azure_queue import create_queue


def _date(text: str) -> object:
    try:
        return parse_date(text)
    except DateError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 with a usage message when it is wrong."""
    parser = argparse.ArgumentParser(
        prog="backfill", description="Enqueue past workflow runs, jobs and steps from GitHub."
    )
    parser.add_argument("--repo", type=repository, required=True, metavar="OWNER/NAME")
    parser.add_argument(
        "--since",
        type=_date,
        required=True,
        metavar="DATE",
        help="runs created from this date (YYYY-MM-DD or ISO time, UTC)",
    )
    parser.add_argument(
        "--until",
        type=_date,
        metavar="DATE",
        help="runs created before this date (default: now)",
    )
    parser.add_argument(
        "--workflow", metavar="NAME", help="one workflow: its file name (build.yml) or id"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and estimate the API calls; enqueue nothing",
    )
    args = parser.parse_args(argv)
    if args.until is not None and args.until <= args.since:
        parser.error("--until must be after --since")
    return args


def backfill(context: Context, args: argparse.Namespace) -> int:
    """Run one backfill and print its summary."""
    target = args.repo
    until = args.until or context.now.replace(microsecond=0)
    api = context.connect(target)
    records = context.records()
    queue = None if args.dry_run else create_queue(context.storage)
    try:
        with api.github:
            job = Backfill(api, target, records, queue, context.now, workflow=args.workflow)
            tally = job.run(args.since, until)
    finally:
        records.close()
        if queue is not None:
            queue.close()
    print(f"backfill {target.owner}/{target.name}: {tally.line(api.budget.calls, args.dry_run)}")
    return 0


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse the command line, then backfill."""
    args = parse_args(argv)
    return run_command("backfill", lambda context: backfill(context, args), env)


if __name__ == "__main__":
    sys.exit(main())
