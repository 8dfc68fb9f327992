"""What the GitHub commands keep in the ledger's table: checkpoints, redeliveries, exported keys.

`recover` and `backfill` need three small things from the table the workers already share:
whether an event key was exported (a DONE row), a checkpoint per command and scope, and how
often a delivery was redelivered. Checkpoints have no `UpdatedAt`, so the ledger's purge keeps
them; redelivery rows have one, so they expire with the ledger's retention (at least the 3 days
GitHub keeps deliveries). Each command is expected to run one at a time per scope.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol
from urllib.parse import quote

from azure.data.tables import UpdateMode

from backend.idempotency.layout import partition_of, to_entry
from backend.idempotency.ledger import EntryState, check_now, distinct_keys
from backend.idempotency.memory import InMemoryLedger
from backend.idempotency.store import TableStore

# Partitions beside the ledger's key partitions ("00", "01") and its purge turn ("purge").
CHECKPOINT_PARTITION = "checkpoint"
REDELIVERY_PARTITION = "redelivery"


@dataclass(frozen=True)
class Redelivery:
    """How often a delivery's guid was redelivered, and its newest attempt id at the last time."""

    count: int
    last_delivery_id: int


class Records(Protocol):
    """The commands' state in the ledger's table."""

    def exported(self, keys: Iterable[str]) -> frozenset[str]:
        """The keys among `keys` that the ledger records as exported (DONE)."""

    def checkpoint(self, name: str) -> str | None:
        """The value saved under `name`, or None before the first save."""

    def save_checkpoint(self, name: str, value: str, now: datetime) -> None:
        """Save `value` under `name`, replacing what was there."""

    def redelivery(self, name: str) -> Redelivery | None:
        """The redelivery state of one guid, or None if it was never redelivered."""

    def save_redelivery(self, name: str, state: Redelivery, now: datetime) -> None:
        """Record a redelivery of one guid."""


def row_key(name: str) -> str:
    """`name` as a RowKey: characters tables refuse (`/`, `#`, `?`, ...) percent-encoded."""
    return quote(name, safe=":@-._~=+,;")


class TableRecords(TableStore):
    """`Records` in the ledger's Azure table; SDK errors become LedgerUnavailable."""

    def exported(self, keys: Iterable[str]) -> frozenset[str]:
        done: set[str] = set()
        for key in distinct_keys(keys):
            row = self._read(partition_of(key), [key]).get(key)
            entry = to_entry(row)
            if entry is not None and entry.state is EntryState.DONE:
                done.add(key)
        return frozenset(done)

    def checkpoint(self, name: str) -> str | None:
        row = self._read(CHECKPOINT_PARTITION, [row_key(name)]).get(row_key(name))
        return None if row is None else str(row["Value"])

    def save_checkpoint(self, name: str, value: str, now: datetime) -> None:
        check_now(now)
        row = {
            "PartitionKey": CHECKPOINT_PARTITION,
            "RowKey": row_key(name),
            "Value": value,
            "ChangedAt": now,
        }
        self._call(partial(self._client.upsert_entity, row, mode=UpdateMode.REPLACE))

    def redelivery(self, name: str) -> Redelivery | None:
        row = self._read(REDELIVERY_PARTITION, [row_key(name)]).get(row_key(name))
        if row is None:
            return None
        return Redelivery(int(row["Count"]), int(row["LastDeliveryId"]))

    def save_redelivery(self, name: str, state: Redelivery, now: datetime) -> None:
        check_now(now)
        row = {
            "PartitionKey": REDELIVERY_PARTITION,
            "RowKey": row_key(name),
            "Count": state.count,
            # A string: delivery ids outgrow the table's default 32-bit integers.
            "LastDeliveryId": str(state.last_delivery_id),
            "UpdatedAt": now,
        }
        self._call(partial(self._client.upsert_entity, row, mode=UpdateMode.REPLACE))


class InMemoryRecords:
    """`Records` beside an in-memory ledger, for tests and dry runs."""

    def __init__(self, ledger: InMemoryLedger | None = None) -> None:
        self.ledger = ledger or InMemoryLedger()
        self.checkpoints: dict[str, str] = {}
        self.redeliveries: dict[str, Redelivery] = {}
        self._lock = threading.Lock()

    def exported(self, keys: Iterable[str]) -> frozenset[str]:
        entries = self.ledger.entries
        return frozenset(
            key
            for key in distinct_keys(keys)
            if key in entries and entries[key].state is EntryState.DONE
        )

    def checkpoint(self, name: str) -> str | None:
        return self.checkpoints.get(name)

    def save_checkpoint(self, name: str, value: str, now: datetime) -> None:
        check_now(now)
        with self._lock:
            self.checkpoints[name] = value

    def redelivery(self, name: str) -> Redelivery | None:
        return self.redeliveries.get(name)

    def save_redelivery(self, name: str, state: Redelivery, now: datetime) -> None:
        check_now(now)
        with self._lock:
            self.redeliveries[name] = state
