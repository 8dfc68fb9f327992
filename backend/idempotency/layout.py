"""How the ledger is laid out in a table: partitions, rows, and the writes that change them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode

from backend.idempotency.batch import Operation
from backend.idempotency.ledger import (
    ClaimStatus,
    Entry,
    EntryState,
    claim_outcome,
    claimed_entry,
    completions_first,
    entity_of,
    is_lifecycle,
    lifecycle_keys,
)

T = TypeVar("T")

# 2 partitions: a batch's claim and its completion each cost one transaction per partition it
# touches, and a transaction's cost is mostly fixed (the SDK's pipeline on the worker, the
# request on the service), so fewer partitions mean fewer requests: a batch of 32 job
# completions costs 4 instead of 8 with 4 partitions, measured about 40% less worker CPU and
# service time per event. 2 x 2,000 entities/s per partition is still far above any GitHub
# organisation's webhook rate (a job writes about 9 rows in all: some 440 jobs/s).
# Changing it remaps keys (see "Changing the partition count" in docs/ledger.md before doing it).
# https://learn.microsoft.com/en-us/azure/storage/tables/scalability-targets
PARTITION_COUNT = 2
# An entity group transaction holds at most 100 operations on one partition.
# https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
MAX_TRANSACTION_OPERATIONS = 100
# The row that says when the table was last purged; outside the key partitions "00", "01".
PURGE_PARTITION = "purge"
PURGE_ROW = "turn"


def partition_of(key: str) -> str:
    """The partition of a key: a hash of its entity, so all actions of an entity share it."""
    digest = hashlib.sha256(entity_of(key).encode("utf-8")).digest()
    return f"{int.from_bytes(digest[:4], 'big') % PARTITION_COUNT:02x}"


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def writes_of(key: str) -> int:
    """The most rows a claim or abandon of `key` writes: a completion marks its lifecycle keys."""
    return 1 if is_lifecycle(key) else 1 + len(lifecycle_keys(key))


def groups(
    keys: list[str], cost_of: Callable[[str], int] = writes_of
) -> list[tuple[str, list[str]]]:
    """Keys by partition, cut to what one transaction can write; an entity's keys stay together.

    `cost_of(key)` is the most rows the key's operation writes. Keeping an entity in one
    transaction lets a completion claimed in it supersede the entity's lifecycle keys of the
    same batch.
    """
    by_partition: dict[str, dict[str, list[str]]] = {}
    for key in keys:
        entities = by_partition.setdefault(partition_of(key), {})
        entities.setdefault(entity_of(key), []).append(key)
    result: list[tuple[str, list[str]]] = []
    for partition, entities in by_partition.items():
        chunk: list[str] = []
        writes = 0
        for members in entities.values():
            cost = sum(cost_of(key) for key in members)
            if chunk and writes + cost > MAX_TRANSACTION_OPERATIONS:
                result.append((partition, chunk))
                chunk, writes = [], 0
            chunk += members
            writes += cost
        if chunk:
            result.append((partition, chunk))
    return result


def transactions(writes: list[list[Operation]]) -> Iterator[list[Operation]]:
    """Each key's writes packed in order into transactions of at most 100, a key's kept whole."""
    batch: list[Operation] = []
    for operations in writes:
        if batch and len(batch) + len(operations) > MAX_TRANSACTION_OPERATIONS:
            yield batch
            batch = []
        batch += operations
    if batch:
        yield batch


def claim_round_trips_bound(keys: Iterable[str]) -> int:
    """Requests a claim of new keys makes: one transaction per group, with no read.

    A group holding a key that already has a row costs a point read per key and another
    transaction on top of that (and more if it keeps racing).
    """
    return len(groups(completions_first(keys)))


@dataclass
class ClaimPlan:
    """What one claim transaction decides and writes."""

    statuses: dict[str, ClaimStatus] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)
    # Each claimed key and the position of its write among `operations`.
    claimed: list[tuple[str, int]] = field(default_factory=list)

    def row_key_at(self, position: int | None) -> str | None:
        """The row key the operation at `position` writes, if there is one."""
        if position is None or not 0 <= position < len(self.operations):
            return None
        return str(self.operations[position][1]["RowKey"])


def plan_claims(
    partition: str,
    keys: list[str],
    rows: dict[str, TableEntity],
    owner: str,
    now: datetime,
    lease: timedelta,
) -> ClaimPlan:
    """Decide `keys` from their stored `rows` (a key without one is new) and plan the writes.

    A claimed key is inserted if new, else replaced only if unchanged since it was read; a
    claimed completion also marks its entity's lifecycle keys superseded, which is how a
    lifecycle event arriving after its completion is recognised without reading another row.
    """
    plan = ClaimPlan()
    superseding: set[str] = set()  # entities whose completion this plan claims
    for key in completions_first(keys):
        stored = rows.get(key)
        superseded = is_superseded(stored) or (is_lifecycle(key) and entity_of(key) in superseding)
        status = claim_outcome(to_entry(stored), superseded, owner, now)
        plan.statuses[key] = status
        if status is not ClaimStatus.CLAIMED:
            continue
        plan.claimed.append((key, len(plan.operations)))
        entry = claimed_entry(owner, now, lease)
        plan.operations.append(write_op(to_row(partition, key, entry), stored))
        if not is_lifecycle(key):
            superseding.add(entity_of(key))
            marks = lifecycle_keys(key)
            plan.operations += [mark_op(partition, other, True, now) for other in marks]
    return plan


def to_row(partition: str, key: str, entry: Entry) -> dict[str, Any]:
    """The table row of one key's entry."""
    return {
        "PartitionKey": partition,
        "RowKey": key,
        "State": entry.state.value,
        "Owner": entry.owner,
        "LeaseUntil": entry.lease_until,
        "UpdatedAt": entry.updated_at,
    }


def to_entry(stored: TableEntity | None) -> Entry | None:
    """The claim a stored row holds, or None for no row or a row that only marks supersession."""
    if stored is None or "State" not in stored:
        return None
    return Entry(
        EntryState(stored["State"]), str(stored["Owner"]), stored["LeaseUntil"], stored["UpdatedAt"]
    )


def is_superseded(stored: TableEntity | None) -> bool:
    """True if the row says its entity's completion was claimed (see `mark_op`)."""
    return stored is not None and stored.get("Superseded") is True


def etag_of(stored: TableEntity) -> str:
    """The ETag a stored row was read with."""
    return str(stored.metadata["etag"])


def write_op(row: dict[str, Any], stored: TableEntity | None) -> Operation:
    """Insert if absent, else replace only if unchanged since it was read (If-Match)."""
    if stored is None:
        return ("create", row, {})
    return replace_op(row, etag_of(stored))


def _if_match(etag: str) -> dict[str, Any]:
    """The options that make a write conditional on the row's ETag still being `etag`."""
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def replace_op(row: dict[str, Any], etag: str) -> Operation:
    """Replace a row only if its ETag is still `etag`."""
    return ("update", row, {"mode": UpdateMode.REPLACE, **_if_match(etag)})


def merge_op(row: dict[str, Any], etag: str) -> Operation:
    """Merge `row` into a row only if its ETag is still `etag`.

    Used where the row is known to hold exactly what this worker wrote (its ETag says so), so
    the result equals a replace's. Azurite serves a merge in place but a replace as a delete
    and an insert, each a pass over the whole table there.
    """
    return ("update", row, {"mode": UpdateMode.MERGE, **_if_match(etag)})


def delete_op(partition: str, key: str, etag: str) -> Operation:
    """Delete a row only if its ETag is still `etag`."""
    return ("delete", {"PartitionKey": partition, "RowKey": key}, _if_match(etag))


def mark_row(partition: str, key: str, superseded: bool, updated_at: datetime) -> dict[str, Any]:
    """A row holding only a lifecycle key's Superseded flag; `UpdatedAt` lets purge remove it."""
    return {
        "PartitionKey": partition,
        "RowKey": key,
        "Superseded": superseded,
        "UpdatedAt": updated_at,
    }


def mark_op(partition: str, key: str, superseded: bool, updated_at: datetime) -> Operation:
    """Set a lifecycle key's Superseded flag, creating its row if absent (insert or merge).

    A merge leaves a claim in the row as it is.
    """
    return ("upsert", mark_row(partition, key, superseded, updated_at), {"mode": UpdateMode.MERGE})
