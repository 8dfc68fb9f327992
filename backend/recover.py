"""`python -m backend.recover`: redeliver a hook's failed deliveries that were never exported.

python -m backend.recover --repo OWNER/NAME --hook-id ID [--dry-run]
python -m backend.recover --org ORG --hook-id ID [--dry-run]
python -m backend.recover --app [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from backend.github.client import Target
from backend.github.command import EXIT_FAILED, Context, repository, run_command
from backend.github.hooks import RestHook
from backend.github.recovery import Pacer, Recovery


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 with a usage message when it is wrong."""
    parser = argparse.ArgumentParser(
        prog="recover", description="Redeliver failed GitHub deliveries the ledger has not seen."
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--repo", type=repository, metavar="OWNER/NAME", help="a repository's hook")
    scope.add_argument("--org", metavar="ORG", help="an organization's hook")
    scope.add_argument("--app", action="store_true", help="the GitHub App's own hook")
    parser.add_argument("--hook-id", type=int, metavar="ID", help="the hook (with --repo or --org)")
    parser.add_argument("--dry-run", action="store_true", help="report only: no redelivery")
    args = parser.parse_args(argv)
    if (args.repo or args.org) and args.hook_id is None:
        parser.error("--hook-id is required with --repo and --org")
    if args.app and args.hook_id is not None:
        parser.error("--app takes no --hook-id: an App has one hook")
    return args


def target_of(args: argparse.Namespace) -> Target:
    """The target the arguments name."""
    if args.repo is not None:
        target: Target = args.repo
        return target
    return Target("org", args.org) if args.org else Target("app")


def recover(context: Context, args: argparse.Namespace) -> int:
    """Run one recovery and print its summary; 1 if a redelivery was refused."""
    target = target_of(args)
    api = context.connect(target)
    hook = RestHook(api, target, args.hook_id)
    pacer = Pacer(context.github.redelivery_interval_s)
    records = context.records()
    try:
        with api.github:
            summary = Recovery(hook, records, pacer, context.now, args.dry_run).run()
    finally:
        records.close()
    print(f"recover {hook.name}: {summary.line(args.dry_run)}")
    for guid in summary.given_up:
        print(f"  given up after 3 redeliveries: {guid}")
    for guid in summary.refused:
        print(f"  refused by GitHub (422): {guid}")
    return 0 if summary.ok else EXIT_FAILED


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Parse the command line, then recover."""
    args = parse_args(argv)
    return run_command("recover", lambda context: recover(context, args), env)


if __name__ == "__main__":
    sys.exit(main())
