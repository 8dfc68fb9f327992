"""An in-memory ledger with the Table ledger's semantics, and the null ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from backend.idempotency.ledger import (
    ClaimStatus,
    Entry,
    EntryState,
    LedgerUnavailable,
    check_now,
    claim_outcome,
    claimed_entry,
    completion_key,
    completions_first,
    distinct_keys,
    done_entry,
    is_refused,
    lifecycle_keys,
    needs_done_write,
)


class InMemoryLedger:
    """A fake of the Table ledger for tests; time comes only from each call's `now`.

    Set `unavailable = True` to make every call raise LedgerUnavailable, as an outage would.
    """

    def __init__(self, lease_s: float = 600) -> None:
        self.unavailable = False
        self.entries: dict[str, Entry] = {}
        self._lease = timedelta(seconds=lease_s)
        self._last_purge: datetime | None = None
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.unavailable:
            raise LedgerUnavailable("in-memory ledger marked unavailable")

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        self._check()
        check_now(now)
        keys = list(keys)
        statuses: dict[str, ClaimStatus] = {}
        with self._lock:
            for key in completions_first(keys):
                status = claim_outcome(self.entries.get(key), self._superseded(key), owner, now)
                if status is ClaimStatus.CLAIMED:
                    self.entries[key] = claimed_entry(owner, now, self._lease)
                statuses[key] = status
        return {key: statuses[key] for key in distinct_keys(keys)}

    def _superseded(self, key: str) -> bool:
        """True for a lifecycle key whose entity's completion is claimed or done."""
        completion = completion_key(key)
        return key in lifecycle_keys(completion) and completion in self.entries

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        self._check()
        check_now(now)
        refused: set[str] = set()
        with self._lock:
            for key in distinct_keys(keys):
                entry = self.entries.get(key)
                if is_refused(entry, owner, now):
                    refused.add(key)
                elif needs_done_write(entry):
                    self.entries[key] = done_entry(owner, now)
        return frozenset(refused)

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        self._check()
        with self._lock:
            for key in distinct_keys(keys):
                entry = self.entries.get(key)
                if entry is not None and entry.state is EntryState.CLAIMED and entry.owner == owner:
                    del self.entries[key]

    def reopen(self, keys: Iterable[str]) -> None:
        self._check()
        with self._lock:
            for key in distinct_keys(keys):
                entry = self.entries.get(key)
                if entry is not None and entry.state is EntryState.DONE:
                    del self.entries[key]

    def purge(self, older_than: datetime) -> int:
        self._check()
        check_now(older_than)
        with self._lock:
            expired = [key for key, entry in self.entries.items() if entry.updated_at < older_than]
            for key in expired:
                del self.entries[key]
        return len(expired)

    def claim_purge_turn(self, now: datetime, interval_s: float) -> bool:
        self._check()
        check_now(now)
        with self._lock:
            last = self._last_purge
            if last is not None and now - last < timedelta(seconds=interval_s):
                return False
            self._last_purge = now
            return True


class NullLedger:
    """The ledger when deduplication is disabled: every key is always CLAIMED."""

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        return dict.fromkeys(distinct_keys(keys), ClaimStatus.CLAIMED)

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        return frozenset()

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        return None

    def reopen(self, keys: Iterable[str]) -> None:
        return None

    def purge(self, older_than: datetime) -> int:
        return 0

    def claim_purge_turn(self, now: datetime, interval_s: float) -> bool:
        return False
