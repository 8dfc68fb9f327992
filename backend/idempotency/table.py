"""The Azure Table Storage ledger: batched, ETag-guarded claims that never leak SDK errors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.data.tables import TableEntity

from backend.idempotency.client import LedgerTimeouts, table_client
from backend.idempotency.fanout import Fanout
from backend.idempotency.layout import (
    MAX_FILTER_ROW_KEYS,
    MAX_TRANSACTION_OPERATIONS,
    PARTITION_COUNT,
    PURGE_PARTITION,
    PURGE_ROW,
    Operation,
    chunks,
    delete_op,
    etag_of,
    groups,
    partition_of,
    replace_op,
    rows_to_read,
    to_entry,
    to_row,
    write_op,
)
from backend.idempotency.ledger import (
    ClaimStatus,
    EntryState,
    LedgerSettings,
    LedgerUnavailable,
    check_now,
    claim_outcome,
    claimed_entry,
    completion_key,
    completions_first,
    distinct_keys,
    done_entry,
    is_lifecycle,
    is_refused,
    needs_done_write,
)
from common.azure_queue import error_code
from common.settings import StorageSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# Decides one key of a complete/abandon from its stored row: the write to make, and "refused".
Decision = Callable[[str, TableEntity | None], tuple[Operation | None, bool]]

# A lost race re-reads the group once, then resolves its keys one at a time.
GROUP_ATTEMPTS = 2
RESOLVE_ATTEMPTS = 4
PURGE_PAGE_SIZE = 1000
MAX_HELD_ETAGS = 10_000


class _Conflict(Exception):
    """A conditional write lost a race: 409 exists, 412 modified, 404 gone."""


def _next_page(pages: Iterator[Iterator[TableEntity]]) -> list[TableEntity] | None:
    page = next(pages, None)
    return None if page is None else list(page)


class TableLedger:
    """`Ledger` over an Azure table; SDK errors become LedgerUnavailable.

    The partitions of one claim, complete or abandon are worked side by side (`concurrency`
    threads, 1 for one after another). `round_trips` counts the HTTP responses received.
    """

    def __init__(
        self,
        storage: StorageSettings,
        settings: LedgerSettings | None = None,
        timeouts: LedgerTimeouts | None = None,
        concurrency: int = PARTITION_COUNT,
    ) -> None:
        settings = settings or LedgerSettings()
        self.table_name = settings.table_name
        self.round_trips = 0
        self._fanout = Fanout(concurrency)
        self._lease = settings.lease
        self._lock = threading.Lock()
        # ETags of this process's live claims: complete/abandon write them without a read.
        self._held: dict[tuple[str, str], str] = {}
        self._client = table_client(
            storage, self.table_name, timeouts or LedgerTimeouts(), self._count
        )

    def _count(self, _response: Any) -> None:
        with self._lock:
            self.round_trips += 1

    def _call(self, operation: Callable[[], T], *, conditional: bool = False) -> T:
        """Run one SDK call; a missing table is created and the call retried once.

        Raises:
            _Conflict: a `conditional` write found a row existing, changed or gone.
            LedgerUnavailable: anything else the SDK raised.
        """
        try:
            try:
                return operation()
            except HttpResponseError as error:
                if error_code(error) != "TableNotFound":
                    raise
                self._create_table()
                return operation()
        except HttpResponseError as error:
            code = error_code(error)
            if conditional and error.status_code in {404, 409, 412} and code != "TableNotFound":
                raise _Conflict(f"{error.status_code} {code}") from error
            raise LedgerUnavailable(
                f"ledger table {self.table_name} answered {error.status_code} {code}"
            ) from error
        except AzureError as error:
            raise LedgerUnavailable(f"ledger table {self.table_name} failed: {error}") from error

    def _create_table(self) -> None:
        try:
            self._client.create_table()
            log.info("created ledger table %s", self.table_name)
        except ResourceExistsError:
            pass

    def ensure_table(self) -> None:
        """Create the table if missing."""
        self._call(self._create_table)

    def _query(self, query: str, parameters: dict[str, Any]) -> list[TableEntity]:
        return self._call(lambda: list(self._client.query_entities(query, parameters=parameters)))

    def _read(self, partition: str, keys: list[str]) -> dict[str, TableEntity]:
        """The stored rows among `keys`, one query per 14 keys."""
        found: dict[str, TableEntity] = {}
        for chunk in chunks(sorted(set(keys)), MAX_FILTER_ROW_KEYS):
            names = {f"k{index}": key for index, key in enumerate(chunk)}
            clauses = " or ".join(f"RowKey eq @{name}" for name in names)
            rows = self._query(f"PartitionKey eq @pk and ( {clauses} )", {"pk": partition, **names})
            found.update((str(row["RowKey"]), row) for row in rows)
        return found

    def _transact(self, operations: list[Operation]) -> list[str]:
        """Write in one entity group transaction; returns each operation's new ETag."""
        results = self._call(lambda: self._client.submit_transaction(operations), conditional=True)
        return [str(result.get("etag", "")) for result in results]

    def _remember(self, owner: str, keys: list[str], etags: list[str]) -> None:
        with self._lock:
            for key, etag in zip(keys, etags, strict=True):
                self._held[(owner, key)] = etag
            while len(self._held) > MAX_HELD_ETAGS:  # claims never settled; the lease covers them
                del self._held[next(iter(self._held))]

    def _held_etags(self, owner: str, keys: list[str]) -> list[str] | None:
        with self._lock:
            etags = [self._held.get((owner, key)) for key in keys]
        return None if None in etags else [etag for etag in etags if etag is not None]

    def _forget(self, owner: str, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._held.pop((owner, key), None)

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        check_now(now)
        keys = list(keys)
        statuses: dict[str, ClaimStatus] = {}

        def work(partition: str, group: list[str]) -> dict[str, ClaimStatus]:
            return self._claim_group(partition, group, owner, now)

        for group_statuses in self._fanout.map(work, groups(completions_first(keys))):
            statuses.update(group_statuses)
        return {key: statuses[key] for key in distinct_keys(keys)}

    def _claim_group(
        self, partition: str, keys: list[str], owner: str, now: datetime
    ) -> dict[str, ClaimStatus]:
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
            rows = self._read(partition, rows_to_read(keys))
            statuses, operations, claimed = self._plan_claims(partition, keys, rows, owner, now)
            try:
                etags = self._transact(operations) if operations else []
            except _Conflict as conflict:
                log.info("ledger partition %s: claim race (%s)", partition, conflict)
                continue
            self._remember(owner, claimed, etags)
            return statuses
        return None

    def _plan_claims(
        self,
        partition: str,
        keys: list[str],
        rows: dict[str, TableEntity],
        owner: str,
        now: datetime,
    ) -> tuple[dict[str, ClaimStatus], list[Operation], list[str]]:
        """Statuses, the writes that make the CLAIMED ones true, and the keys those writes claim."""
        entries = {key: entry for key, row in rows.items() if (entry := to_entry(row)) is not None}
        statuses: dict[str, ClaimStatus] = {}
        operations: list[Operation] = []
        claimed: list[str] = []
        for key in keys:
            completion = entries.get(completion_key(key)) if is_lifecycle(key) else None
            status = claim_outcome(entries.get(key), completion, owner, now)
            statuses[key] = status
            if status is ClaimStatus.CLAIMED:
                entry = claimed_entry(owner, now, self._lease)
                operations.append(write_op(to_row(partition, key, entry), rows.get(key)))
                entries[key] = entry  # a lifecycle key later in this batch sees this completion
                claimed.append(key)
        return statuses, operations, claimed

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        check_now(now)
        done = done_entry(owner, now)

        def decide(key: str, stored: TableEntity | None) -> tuple[Operation | None, bool]:
            entry = to_entry(stored)
            if is_refused(entry, owner, now):
                return None, True
            if not needs_done_write(entry):
                return None, False
            return write_op(to_row(partition_of(key), key, done), stored), False

        def work(partition: str, group: list[str]) -> set[str]:
            etags = self._held_etags(owner, group)
            fast = None
            if etags is not None:
                fast = [
                    replace_op(to_row(partition, key, done), etag)
                    for key, etag in zip(group, etags, strict=True)
                ]
            refused = self._settle(partition, group, decide, fast)
            self._forget(owner, group)
            return refused

        return frozenset().union(*self._fanout.map(work, groups(distinct_keys(keys))))

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        def decide(key: str, stored: TableEntity | None) -> tuple[Operation | None, bool]:
            entry = to_entry(stored)
            if stored is None or entry is None:
                return None, False
            if entry.state is not EntryState.CLAIMED or entry.owner != owner:
                return None, False
            return delete_op(partition_of(key), key, etag_of(stored)), False

        def work(partition: str, group: list[str]) -> None:
            etags = self._held_etags(owner, group)
            fast = None
            if etags is not None:
                fast = [
                    delete_op(partition, key, etag) for key, etag in zip(group, etags, strict=True)
                ]
            self._settle(partition, group, decide, fast)
            self._forget(owner, group)

        self._fanout.map(work, groups(distinct_keys(keys)))

    def _settle(
        self, partition: str, keys: list[str], decide: Decision, fast: list[Operation] | None
    ) -> set[str]:
        """Write a group: blind with known ETags, else read and decide; one key at a time on a race.

        Returns the keys `decide` refused.
        """
        if fast is not None:
            try:
                self._transact(fast)
                return set()
            except _Conflict:
                pass  # something changed since our claim: decide from what is stored now
        rows = self._read(partition, keys)
        decisions = [decide(key, rows.get(key)) for key in keys]
        operations = [operation for operation, _ in decisions if operation is not None]
        try:
            if operations:
                self._transact(operations)
            return {key for key, (_, refused) in zip(keys, decisions, strict=True) if refused}
        except _Conflict:
            return {key for key in keys if self._settle_one(partition, key, decide)}

    def _settle_one(self, partition: str, key: str, decide: Decision) -> bool:
        for _ in range(RESOLVE_ATTEMPTS):
            operation, refused = decide(key, self._read(partition, [key]).get(key))
            try:
                if operation is not None:
                    self._transact([operation])
                return refused
            except _Conflict:
                continue
        log.warning("ledger key %s still contended after %d tries", key, RESOLVE_ATTEMPTS)
        return True

    def purge(self, older_than: datetime) -> int:
        check_now(older_than)
        pages = self._call(
            lambda: self._client.query_entities(
                "UpdatedAt lt @cutoff",
                parameters={"cutoff": older_than},
                select=["PartitionKey", "RowKey"],
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
                    deleted += self._delete_rows(partition, chunk)
        if deleted:
            log.info("purged %d ledger entries older than %s", deleted, older_than.isoformat())
        return deleted

    def _delete_rows(self, partition: str, rows: list[TableEntity]) -> int:
        operations = [delete_op(partition, str(row["RowKey"]), etag_of(row)) for row in rows]
        try:
            self._transact(operations)
            return len(operations)
        except _Conflict:
            pass
        deleted = 0
        for operation in operations:
            try:
                self._transact([operation])
                deleted += 1
            except _Conflict:
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
        except _Conflict:
            return False  # another worker took this turn between our read and write
        return True

    def close(self) -> None:
        """Stop the partition threads and close the HTTP session."""
        self._fanout.close()
        self._client.close()
