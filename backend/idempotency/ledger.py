"""The idempotency ledger: its interface, claim statuses, errors and key rules."""

from __future__ import annotations

import enum
import os
import re
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# Re-exported: the ledger's settings are read with the backend's, but belong to its interface.
from backend.settings import LedgerSettings as LedgerSettings

COMPLETED_ACTION = "completed"
# The actions before `completed` that have telemetry, per event: what a completion supersedes.
# They must match the telemetry's mappers (tests check that they do).
LIFECYCLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "workflow_job": ("queued", "waiting", "in_progress"),
    "workflow_run": ("requested", "in_progress"),
}
MAX_KEY_CHARS = 512
# Characters Azure Tables refuses in a RowKey, plus control characters.
# https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
_FORBIDDEN_KEY_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class ClaimStatus(enum.Enum):
    """What a worker may do with one event key after `claim`."""

    CLAIMED = "claimed"  # this owner holds it now: export it, then complete or abandon it
    DONE = "done"  # already exported by someone: skip it and delete the message
    BUSY = "busy"  # another owner holds a live claim: leave the message, it comes back later
    SUPERSEDED = "superseded"  # a lifecycle event of an entity already completed: skip, delete


class LedgerError(Exception):
    """Base class of ledger failures."""


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or answered with a transient error; try again later."""


class EntryState(enum.Enum):
    """The stored state of one key."""

    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True)
class Entry:
    """One key's row: its state, who holds or completed it, until when, and when it changed."""

    state: EntryState
    owner: str
    lease_until: datetime
    updated_at: datetime


class Ledger(Protocol):
    """Records which event keys were claimed and exported, shared by every worker process."""

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        """Claim keys for `owner` until `now` + the lease; one status per distinct key.

        Raises:
            LedgerUnavailable: the ledger is down; nothing is known about the keys.
        """

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        """Record keys as exported; returns the keys refused because another owner holds them.

        Raises:
            LedgerUnavailable: the ledger is down; the keys may still be claimed by `owner`.
        """

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        """Release keys still claimed by `owner` so any worker may claim them at once.

        Raises:
            LedgerUnavailable: the ledger is down; the claims lapse when their lease ends.
        """

    def reopen(self, keys: Iterable[str]) -> None:
        """Forget that keys were exported, so the next claim of each is CLAIMED, not DONE.

        Only keys recorded as done change; a claim, live or expired, is left as it is. A
        reopened completion no longer supersedes its entity's lifecycle keys (as `abandon`).

        Raises:
            LedgerUnavailable: the ledger is down; some keys may be reopened, the rest not.
        """

    def purge(self, older_than: datetime) -> int:
        """Delete entries last changed before `older_than`; returns how many were deleted."""

    def claim_purge_turn(self, now: datetime, interval_s: float) -> bool:
        """True for exactly one caller per `interval_s` across all workers: it should purge."""


def entity_of(key: str) -> str:
    """The entity a key belongs to: everything before its last ':' ("workflow_job:123")."""
    return key.rpartition(":")[0]


def completion_key(key: str) -> str:
    """The key of the `completed` event of the key's entity."""
    return f"{entity_of(key)}:{COMPLETED_ACTION}"


def is_lifecycle(key: str) -> bool:
    """True for any action before completion (queued, waiting, in_progress, requested)."""
    return key.rpartition(":")[2] != COMPLETED_ACTION


def lifecycle_keys(key: str) -> list[str]:
    """The lifecycle keys of the key's entity: what claiming its completion supersedes."""
    event = key.partition(":")[0]
    return [f"{entity_of(key)}:{action}" for action in LIFECYCLE_ACTIONS.get(event, ())]


def check_key(key: str) -> str:
    """Return `key` if it is "<event>:<id>[:<attempt>]:<action>"-shaped and storable.

    Raises:
        ValueError: the key has no entity or action, is too long, or has a forbidden character.
    """
    entity, _, action = key.rpartition(":")
    if not entity or not action:
        raise ValueError(f"event key {_quoted(key)} is not '<entity>:<action>'")
    if len(key) > MAX_KEY_CHARS or _FORBIDDEN_KEY_CHARS.search(key):
        raise ValueError(
            f"event key {_quoted(key)} ({len(key)} characters) is too long or has a character "
            "tables refuse"
        )
    return key


def _quoted(key: str) -> str:
    """The key for an error message: at most its first 100 characters."""
    return repr(key[:100]) + ("…" if len(key) > 100 else "")


def distinct_keys(keys: Iterable[str]) -> list[str]:
    """Checked keys without repeats, in first-seen order."""
    return list(dict.fromkeys(check_key(key) for key in keys))


def completions_first(keys: Iterable[str]) -> list[str]:
    """Keys with `completed` ones first, so a lifecycle key sees its entity's completion claim."""
    ordered = distinct_keys(keys)
    return [key for key in ordered if not is_lifecycle(key)] + [
        key for key in ordered if is_lifecycle(key)
    ]


def claim_outcome(entry: Entry | None, superseded: bool, owner: str, now: datetime) -> ClaimStatus:
    """Decide a claim of one key from its entry and whether its entity's completion was claimed.

    A claim is reentrant: the same owner gets CLAIMED again (and a fresh lease), which also
    makes an SDK retry of a claim that had in fact succeeded harmless.
    """
    if entry is not None and entry.state is EntryState.DONE:
        return ClaimStatus.DONE
    if superseded:
        return ClaimStatus.SUPERSEDED
    if entry is None or entry.owner == owner or entry.lease_until <= now:
        return ClaimStatus.CLAIMED
    return ClaimStatus.BUSY


def is_refused(entry: Entry | None, owner: str, now: datetime) -> bool:
    """True when `owner` may not record the key as done: someone else did or holds it live."""
    if entry is None or entry.owner == owner:
        return False
    return entry.state is EntryState.DONE or entry.lease_until > now


def needs_done_write(entry: Entry | None) -> bool:
    """True unless the entry already says done (completing twice writes nothing)."""
    return entry is None or entry.state is EntryState.CLAIMED


def claimed_entry(owner: str, now: datetime, lease: timedelta) -> Entry:
    """The entry a successful claim writes."""
    return Entry(EntryState.CLAIMED, owner, now + lease, now)


def done_entry(owner: str, now: datetime) -> Entry:
    """The entry a successful completion writes."""
    return Entry(EntryState.DONE, owner, now, now)


def check_now(now: datetime) -> datetime:
    """Return `now` if it is timezone-aware (naive times would compare wrongly with stored ones)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("ledger times must be timezone-aware (use datetime.now(UTC))")
    return now


def owner_id() -> str:
    """A claim owner unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def purge_if_due(ledger: Ledger, settings: LedgerSettings, now: datetime) -> int | None:
    """Purge expired entries if this caller won this interval's turn; None when it did not."""
    if not ledger.claim_purge_turn(now, settings.purge_interval_s):
        return None
    return ledger.purge(now - settings.retention)
