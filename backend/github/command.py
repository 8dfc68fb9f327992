"""What `recover` and `backfill` share as commands: settings, clients, and clean failures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from backend.github.client import GitHubApi, GitHubError, RateBudget, Target, connect
from backend.github.settings import GitHubSettings, load_github_settings
from backend.github.windows import DateError
from backend.idempotency.ledger import LedgerError
from backend.idempotency.records import TableRecords
from backend.process import EXIT_CONFIG
from backend.settings import load_ledger_settings
from common.logs import configure_logging
from common.queue import QueueError
from common.settings import (
    BACKEND_PREFIX,
    EnvReader,
    SettingsError,
    StorageSettings,
    environment,
    read_storage,
)

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class Context:
    """The settings and clients one command run uses, built from the environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.github: GitHubSettings = load_github_settings(env)
        self.storage: StorageSettings = read_storage(EnvReader(env, BACKEND_PREFIX))
        self.table_name = load_ledger_settings(env).table_name
        self.now = datetime.now(UTC)

    def connect(self, target: Target) -> GitHubApi:
        """A GitHub client for `target`, with the rate-limit budget of these settings."""
        return connect(self.github, target, RateBudget(self.github.rate_limit_reserve))

    def records(self) -> TableRecords:
        """The commands' state in the ledger's table."""
        return TableRecords(self.storage, self.table_name)


def run_command(
    name: str, body: Callable[[Context], int], env: Mapping[str, str] | None = None
) -> int:
    """Run `body` with a Context; every expected failure is one line on stderr, never a traceback.

    Exit codes: 0 done, 1 a GitHub, queue or ledger failure (or work left undone), 78 a setting
    is missing or wrong, 130 interrupted.
    """
    configure_logging(name)
    # httpx logs each request's URL at INFO; the commands log what they do themselves.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return body(Context(environment() if env is None else env))
    except SettingsError as error:
        _fail(name, f"configuration: {error}")
        return EXIT_CONFIG
    except (GitHubError, LedgerError, QueueError, DateError) as error:
        _fail(name, str(error))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail(name, "interrupted")
        return EXIT_INTERRUPTED


def _fail(name: str, message: str) -> None:
    print(f"{name}: {message}", file=sys.stderr)


def repository(text: str) -> Target:
    """`OWNER/NAME` as a repository target (argparse's `type=`)."""
    owner, _, repo = text.partition("/")
    if not owner or not repo or "/" in repo:
        raise argparse.ArgumentTypeError(f"{text!r} is not OWNER/NAME")
    return Target("repo", owner, repo)
