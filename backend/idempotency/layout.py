"""How the ledger is laid out in a table: partitions, rows, and the writes that change them."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode

from backend.idempotency.ledger import (
    Entry,
    EntryState,
    completion_key,
    completions_first,
    entity_of,
    is_lifecycle,
)

T = TypeVar("T")
# (operation, entity, options) as TableClient.submit_transaction takes it.
Operation = tuple[str, dict[str, Any], dict[str, Any]]

# 4 partitions: a claim costs a read and a transaction per partition a batch touches, and
# most of a request's client CPU is fixed (the SDK's pipeline, and for a transaction its
# multipart body and reply), so a 32-message batch costs 12 requests over 4 partitions against
# 24 over 8: measured 140 ms of worker CPU per batch instead of 204. Its ~8 keys per partition
# fit one 14-key query (more, with completion rows, are split into several queries), and
# 4 x 2,000 entities/s per partition is far above any GitHub organisation's webhook rate.
# Changing it remaps keys (see the README's "Table layout" before doing it).
# https://learn.microsoft.com/en-us/azure/storage/tables/scalability-targets
PARTITION_COUNT = 4
# A $filter may hold at most 15 comparisons; one is the PartitionKey.
# https://learn.microsoft.com/en-us/rest/api/storageservices/querying-tables-and-entities
MAX_FILTER_ROW_KEYS = 14
# An entity group transaction holds at most 100 operations on one partition.
# https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
MAX_TRANSACTION_OPERATIONS = 100
# The row that says when the table was last purged; outside the key partitions "00".."03".
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


def groups(keys: list[str]) -> list[tuple[str, list[str]]]:
    """Keys by partition (order kept), cut to what one transaction can write."""
    by_partition: dict[str, list[str]] = {}
    for key in keys:
        by_partition.setdefault(partition_of(key), []).append(key)
    return [
        (partition, chunk)
        for partition, members in by_partition.items()
        for chunk in chunks(members, MAX_TRANSACTION_OPERATIONS)
    ]


def rows_to_read(keys: list[str]) -> list[str]:
    """The keys themselves and the completion keys their lifecycle keys are checked against."""
    completions = [completion_key(key) for key in keys if is_lifecycle(key)]
    return list(dict.fromkeys(keys + completions))


def claim_round_trips_bound(keys: Iterable[str]) -> int:
    """Requests an uncontended claim of `keys` makes at most: per group, its reads and a write.

    A contended partition costs a read and a write per key on top of that.
    """
    return sum(
        math.ceil(len(rows_to_read(group)) / MAX_FILTER_ROW_KEYS) + 1
        for _, group in groups(completions_first(keys))
    )


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
    """The entry a stored row holds, or None for no row."""
    if stored is None:
        return None
    return Entry(
        EntryState(stored["State"]), str(stored["Owner"]), stored["LeaseUntil"], stored["UpdatedAt"]
    )


def etag_of(stored: TableEntity) -> str:
    """The ETag a stored row was read with."""
    return str(stored.metadata["etag"])


def write_op(row: dict[str, Any], stored: TableEntity | None) -> Operation:
    """Insert if absent, else replace only if unchanged since it was read (If-Match)."""
    if stored is None:
        return ("create", row, {})
    return replace_op(row, etag_of(stored))


def replace_op(row: dict[str, Any], etag: str) -> Operation:
    """Replace a row only if its ETag is still `etag`."""
    conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    return ("update", row, {"mode": UpdateMode.REPLACE, **conditions})


def delete_op(partition: str, key: str, etag: str) -> Operation:
    """Delete a row only if its ETag is still `etag`."""
    conditions = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    return ("delete", {"PartitionKey": partition, "RowKey": key}, conditions)
