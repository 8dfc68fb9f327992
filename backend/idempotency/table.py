"""The Azure Table Storage ledger: batched, ETag-guarded claims that never leak SDK errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from azure.data.tables import TableEntity

from backend.idempotency.batch import Operation
from backend.idempotency.held import HeldEtags
from backend.idempotency.layout import (
    MAX_TRANSACTION_OPERATIONS,
    PARTITION_COUNT,
    PURGE_PARTITION,
    PURGE_ROW,
    chunks,
    delete_op,
    etag_of,
    groups,
    is_superseded,
    mark_op,
    mark_row,
    merge_op,
    partition_of,
    plan_claims,
    replace_op,
    to_entry,
    to_row,
    transactions,
    write_op,
)
from backend.idempotency.ledger import (
    ClaimStatus,
    EntryState,
    LedgerSettings,
    check_now,
    completion_key,
    completions_first,
    distinct_keys,
    done_entry,
    is_lifecycle,
    is_refused,
    lifecycle_keys,
    needs_done_write,
)
from backend.idempotency.store import LEDGER_TIMEOUTS, Conflict, TableStore
from backend.threadpool import ThreadPool
from common.azure_clients import ClientTimeouts
from common.settings import StorageSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Decides one key of a complete/abandon from its stored row: the writes to make, and "refused".
Decision = Callable[[str, TableEntity | None], tuple[list[Operation], bool]]

# A lost race re-reads the group once, then resolves its keys one at a time.
GROUP_ATTEMPTS = 2
RESOLVE_ATTEMPTS = 4
PURGE_PAGE_SIZE = 1000


class _ClaimConflict(Conflict):
    """A claim transaction failed on the row of `key` (None: the service did not say which)."""

    def __init__(self, message: str, key: str | None) -> None:
        super().__init__(message)
        self.key = key


def _lifecycle_keys_besides(key: str, called: set[str]) -> list[str]:
    """A completion's lifecycle keys that are not among `called` (none for a lifecycle key)."""
    if is_lifecycle(key):
        return []
    return [other for other in lifecycle_keys(key) if other not in called]


def _next_page(pages: Iterator[Iterator[TableEntity]]) -> list[TableEntity] | None:
    page = next(pages, None)
    return None if page is None else list(page)


class TableLedger(TableStore):
    """`Ledger` over an Azure table; SDK errors become LedgerUnavailable.

    The partitions of one claim, complete or abandon are worked side by side (`concurrency`
    threads, 1 for one after another). `round_trips` counts the HTTP responses received.
    `fast_transactions=False` sends transactions through the SDK's own call (see `transport`).
    """

    def __init__(
        self,
        storage: StorageSettings,
        settings: LedgerSettings | None = None,
        timeouts: ClientTimeouts = LEDGER_TIMEOUTS,
        concurrency: int = PARTITION_COUNT,
        *,
        fast_transactions: bool = True,
    ) -> None:
        settings = settings or LedgerSettings()
        # Started on first use, so a ledger built before a fork or spawn carries no thread.
        self._partitions = ThreadPool(concurrency, "ledger")
        self._lease = settings.lease
        self._held = HeldEtags()
        super().__init__(
            storage, settings.table_name, timeouts, fast_transactions=fast_transactions
        )

    def _each_group(
        self, work: Callable[[str, list[str]], T], partition_groups: list[tuple[str, list[str]]]
    ) -> list[T]:
        """`work(partition, keys)` for every group, side by side; see `ThreadPool.map`.

        The partitions are independent, so a batch's ledger latency is that of one group's
        requests, not the sum of them all.
        """
        return self._partitions.map(lambda group: work(*group), partition_groups)

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        check_now(now)
        keys = list(keys)
        statuses: dict[str, ClaimStatus] = {}

        def work(partition: str, group: list[str]) -> dict[str, ClaimStatus]:
            return self._claim_group(partition, group, owner, now)

        for group_statuses in self._each_group(work, groups(completions_first(keys))):
            statuses.update(group_statuses)
        return {key: statuses[key] for key in distinct_keys(keys)}

    def _claim_group(
        self, partition: str, keys: list[str], owner: str, now: datetime
    ) -> dict[str, ClaimStatus]:
        # Most keys are new: insert them without reading. A row already there (a duplicate, a
        # claim of another owner, a superseded lifecycle key) fails the whole transaction.
        try:
            return self._write_claims(partition, keys, owner, now, {})
        except _ClaimConflict as conflict:
            existing = conflict.key
        if existing is not None:
            # Usually one copy of an event seen before: read that row alone, insert the rest.
            try:
                return self._write_claims(
                    partition, keys, owner, now, self._read(partition, [existing])
                )
            except Conflict:
                pass
        statuses = self._try_claim(partition, keys, owner, now, GROUP_ATTEMPTS)
        if statuses is not None:
            return statuses
        log.info("ledger partition %s: claims keep racing, one key at a time", partition)
        return {key: self._claim_one(partition, key, owner, now) for key in keys}

    def _claim_one(self, partition: str, key: str, owner: str, now: datetime) -> ClaimStatus:
        statuses = self._try_claim(partition, [key], owner, now, RESOLVE_ATTEMPTS)
        if statuses is None:
            log.warning("ledger key %s still contended after %d tries: busy", key, RESOLVE_ATTEMPTS)
            return ClaimStatus.BUSY
        return statuses[key]

    def _try_claim(
        self, partition: str, keys: list[str], owner: str, now: datetime, attempts: int
    ) -> dict[str, ClaimStatus] | None:
        """Read, decide and write `keys` in one transaction; None if every attempt lost a race.

        A lost race rolls the whole transaction back, so a retry re-reads and decides afresh.
        """
        for _ in range(attempts):
            try:
                return self._write_claims(partition, keys, owner, now, self._read(partition, keys))
            except Conflict:
                log.info("ledger partition %s: claim race, reading again", partition)
        return None

    def _write_claims(
        self,
        partition: str,
        keys: list[str],
        owner: str,
        now: datetime,
        rows: dict[str, TableEntity],
    ) -> dict[str, ClaimStatus]:
        """Decide `keys` from `rows` (a key without one is taken as new) and write them.

        Raises:
            _ClaimConflict: a row was not as assumed; `key` names it when the service said.
        """
        plan = plan_claims(partition, keys, rows, owner, now, self._lease)
        try:
            etags = self._transact(plan.operations) if plan.operations else []
        except Conflict as conflict:
            raise _ClaimConflict(str(conflict), plan.row_key_at(conflict.index)) from conflict
        claimed = [key for key, _ in plan.claimed]
        self._held.remember(owner, claimed, [etags[position] for _, position in plan.claimed])
        return plan.statuses

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        check_now(now)
        done = done_entry(owner, now)
        called = set(distinct_keys(keys))

        def decide(key: str, stored: TableEntity | None) -> tuple[list[Operation], bool]:
            entry = to_entry(stored)
            if is_refused(entry, owner, now):
                return [], True
            if not needs_done_write(entry):
                return [], False
            partition = partition_of(key)
            # A completion nobody claimed marks its lifecycle keys here (its claim did otherwise),
            # all but those of this call, which have their own write.
            marks = [] if entry is not None else _lifecycle_keys_besides(key, called)
            writes = [write_op(to_row(partition, key, done), stored)]
            return writes + [mark_op(partition, other, True, now) for other in marks], False

        def work(partition: str, group: list[str]) -> set[str]:
            etags = self._held.of(owner, group)
            fast = None
            if etags is not None:
                fast = [
                    [merge_op(to_row(partition, key, done), etag)]
                    for key, etag in zip(group, etags, strict=True)
                ]
            refused = self._settle(partition, group, decide, fast)
            self._held.forget(owner, group)
            return refused

        # A completion writes one row per key (marks only for a completion nobody claimed,
        # which `_settle` splits off into transactions of their own if they do not fit).
        single = groups(distinct_keys(keys), cost_of=lambda _key: 1)
        return frozenset().union(*self._each_group(work, single))

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        # Only the purge reads UpdatedAt: the time of the marks a completion's abandon clears
        # need not come from the caller.
        now = datetime.now(UTC)
        called = set(distinct_keys(keys))

        def release(partition: str, key: str, etag: str, marked: bool = False) -> list[Operation]:
            """Give up our claim; an abandoned completion no longer supersedes its lifecycle.

            A lifecycle key `marked` superseded since our claim keeps the mark alone.
            """
            if marked:
                return [replace_op(mark_row(partition, key, True, now), etag)]
            marks = _lifecycle_keys_besides(key, called)
            clear = [mark_op(partition, other, False, now) for other in marks]
            return [delete_op(partition, key, etag), *clear]

        def decide(key: str, stored: TableEntity | None) -> tuple[list[Operation], bool]:
            entry = to_entry(stored)
            if stored is None or entry is None:
                return [], False
            if entry.state is not EntryState.CLAIMED or entry.owner != owner:
                return [], False
            # The mark stays unless its completion is abandoned in this call too.
            marked = is_superseded(stored) and completion_key(key) not in called
            return release(partition_of(key), key, etag_of(stored), marked), False

        def work(partition: str, group: list[str]) -> None:
            etags = self._held.of(owner, group)
            fast = None
            if etags is not None:
                fast = [
                    release(partition, key, etag) for key, etag in zip(group, etags, strict=True)
                ]
            self._settle(partition, group, decide, fast)
            self._held.forget(owner, group)

        self._each_group(work, groups(distinct_keys(keys)))

    def reopen(self, keys: Iterable[str]) -> None:
        now = datetime.now(UTC)  # as in `abandon`, only the purge reads UpdatedAt

        def decide(key: str, stored: TableEntity | None) -> tuple[list[Operation], bool]:
            entry = to_entry(stored)
            if stored is None or entry is None or entry.state is not EntryState.DONE:
                return [], False
            partition, etag = partition_of(key), etag_of(stored)
            if is_lifecycle(key) and is_superseded(stored):
                # Its entity's completion still stands: the row keeps the mark alone.
                return [replace_op(mark_row(partition, key, True, now), etag)], False
            marks = [] if is_lifecycle(key) else lifecycle_keys(key)
            clear = [mark_op(partition, other, False, now) for other in marks]
            return [delete_op(partition, key, etag), *clear], False

        # Completions in a pass before their lifecycle keys, which are then decided from the
        # marks the completions' reopening left (one transaction cannot write a row twice).
        def work(partition: str, group: list[str]) -> None:
            self._settle(partition, group, decide, None)

        ordered = distinct_keys(keys)
        for lifecycle in (False, True):
            part = [key for key in ordered if is_lifecycle(key) is lifecycle]
            if part:
                self._each_group(work, groups(part))

    def _settle(
        self,
        partition: str,
        keys: list[str],
        decide: Decision,
        fast: list[list[Operation]] | None,
    ) -> set[str]:
        """Write a group: blind with known ETags, else read and decide; one key at a time on a race.

        `fast` holds each key's writes when this owner's ETags are known. Returns the keys
        `decide` refused.
        """
        if fast is not None:
            try:
                self._transact([operation for writes in fast for operation in writes])
                return set()
            except Conflict:
                pass  # something changed since our claim: decide from what is stored now
        rows = self._read(partition, keys)
        decisions = [decide(key, rows.get(key)) for key in keys]
        try:
            for operations in transactions([writes for writes, _ in decisions]):
                self._transact(operations)
            return {key for key, (_, refused) in zip(keys, decisions, strict=True) if refused}
        except Conflict:  # deciding again is harmless for the keys already written
            return {key for key in keys if self._settle_one(partition, key, decide)}

    def _settle_one(self, partition: str, key: str, decide: Decision) -> bool:
        for _ in range(RESOLVE_ATTEMPTS):
            operations, refused = decide(key, self._read(partition, [key]).get(key))
            try:
                if operations:
                    self._transact(operations)
                return refused
            except Conflict:
                continue
        log.warning("ledger key %s still contended after %d tries", key, RESOLVE_ATTEMPTS)
        return True

    def purge(self, older_than: datetime) -> int:
        check_now(older_than)
        pages = self._call(
            lambda: self._client.query_entities(
                "UpdatedAt lt @cutoff",
                parameters={"cutoff": older_than},
                select=["PartitionKey", "RowKey", "State"],
                results_per_page=PURGE_PAGE_SIZE,
            ).by_page()
        )
        deleted = 0
        while (page := self._call(lambda: _next_page(pages))) is not None:
            by_partition: dict[str, list[TableEntity]] = {}
            for row in page:
                by_partition.setdefault(str(row["PartitionKey"]), []).append(row)
            for partition, rows in by_partition.items():
                for chunk in chunks(rows, MAX_TRANSACTION_OPERATIONS):
                    # Count entries, not the rows that only marked a lifecycle key superseded.
                    gone = self._delete_rows(partition, chunk)
                    deleted += sum(1 for row in gone if row.get("State") is not None)
        if deleted:
            log.info("purged %d ledger entries older than %s", deleted, older_than.isoformat())
        return deleted

    def _delete_rows(self, partition: str, rows: list[TableEntity]) -> list[TableEntity]:
        """Delete rows unchanged since the scan; returns those deleted."""
        operations = [delete_op(partition, str(row["RowKey"]), etag_of(row)) for row in rows]
        try:
            self._transact(operations)
            return rows
        except Conflict:
            pass
        deleted: list[TableEntity] = []
        for row, operation in zip(rows, operations, strict=True):
            try:
                self._transact([operation])
                deleted.append(row)
            except Conflict:
                pass  # changed or deleted since the scan: a newer write keeps it
        return deleted

    def claim_purge_turn(self, now: datetime, interval_s: float) -> bool:
        check_now(now)
        stored = self._read(PURGE_PARTITION, [PURGE_ROW]).get(PURGE_ROW)
        if stored is not None and now - stored["LastPurgeAt"] < timedelta(seconds=interval_s):
            return False
        turn = {"PartitionKey": PURGE_PARTITION, "RowKey": PURGE_ROW, "LastPurgeAt": now}
        try:
            self._transact([write_op(turn, stored)])
        except Conflict:
            return False  # another worker took this turn between our read and write
        return True

    def close(self) -> None:
        """Stop the partition threads and close the HTTP session."""
        self._partitions.close()
        super().close()
