"""What only the Azure Tables ledger can show: round trips, real races, outages, creation."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableEntity, UpdateMode
from pytest_mock import MockerFixture

from backend.idempotency import (
    ClaimStatus,
    LedgerSettings,
    LedgerUnavailable,
    NullLedger,
    TableLedger,
    claim_round_trips_bound,
    create_ledger,
    create_table_ledger,
)
from backend.idempotency.layout import PARTITION_COUNT, partition_of
from common.azure_clients import ClientTimeouts
from common.settings import StorageSettings
from tests.idempotency.conftest import LEASE_S, T0, table_ledger, unique_table_name
from tools.azurite import ACCOUNT_KEY, Azurite

pytestmark = pytest.mark.azurite

CLAIMED, DONE, BUSY, SUPERSEDED = (
    ClaimStatus.CLAIMED,
    ClaimStatus.DONE,
    ClaimStatus.BUSY,
    ClaimStatus.SUPERSEDED,
)
FAST = ClientTimeouts(connection_timeout_s=1, read_timeout_s=1, retries=1, retry_backoff_s=0.1)


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableLedger]:
    ledger = table_ledger(azurite)
    ledger.ensure_table()
    yield ledger
    ledger.close()


def keys_in_partition(partition: str, count: int) -> list[str]:
    """`count` job keys of distinct entities that all hash to `partition`."""
    assert int(partition, 16) < PARTITION_COUNT, f"no partition {partition}"
    candidates = (f"workflow_job:{n}:completed" for n in itertools.count(1))
    return list(itertools.islice((k for k in candidates if partition_of(k) == partition), count))


def trips(ledger: TableLedger) -> int:
    """Round trips since the last call (reads the ledger's response counter and resets it)."""
    count, ledger.round_trips = ledger.round_trips, 0
    return count


def test_a_batch_of_32_new_keys_costs_one_transaction_per_partition_and_no_read(
    table: TableLedger,
) -> None:
    keys = [f"workflow_job:{7000 + n}:completed" for n in range(32)]
    partitions = len({partition_of(key) for key in keys})
    trips(table)

    table.claim(keys, "a", T0)
    claim_trips = trips(table)
    table.complete(keys, "a", T0)
    complete_trips = trips(table)

    assert claim_trips == claim_round_trips_bound(keys) == partitions
    assert complete_trips == partitions  # blind If-Match writes with the ETags of the claim
    assert partitions <= PARTITION_COUNT


def test_32_keys_of_one_partition_cost_a_constant_not_32(table: TableLedger) -> None:
    keys = keys_in_partition("00", 32)
    lifecycle = [key.replace(":completed", ":in_progress") for key in keys]
    trips(table)

    table.claim(keys, "a", T0)
    claim_trips = trips(table)
    table.complete(keys, "a", T0)
    complete_trips = trips(table)
    superseded = table.claim(lifecycle, "b", T0)
    lifecycle_trips = trips(table)

    # Each job completion writes its row and marks its 3 lifecycle keys: 128 writes, two
    # transactions of at most 100; completing them writes 32 rows, one transaction.
    assert (claim_trips, complete_trips) == (2, 1)
    # Late lifecycle keys fail the blind insert; the row it names is read and the insert tried
    # again, which fails on the next one; then all 32 are read one by one. Nothing to write.
    assert lifecycle_trips == 1 + 1 + 1 + 32
    assert set(superseded.values()) == {SUPERSEDED}


def test_completing_many_unclaimed_completions_splits_their_writes(table: TableLedger) -> None:
    # 40 completions nobody claimed: each writes its row and marks its 3 lifecycle keys, 160
    # writes for one partition, more than one transaction takes.
    keys = keys_in_partition("01", 40)
    trips(table)

    assert table.complete(keys, "a", T0) == frozenset()

    assert trips(table) == 40 + 2  # a point read per key, then two transactions
    lifecycle = [key.replace(":completed", ":waiting") for key in keys]
    assert set(table.claim(lifecycle, "b", T0).values()) == {SUPERSEDED}
    assert set(table.claim(keys, "b", T0).values()) == {DONE}


def test_abandon_of_own_claims_is_one_round_trip_per_partition(table: TableLedger) -> None:
    keys = keys_in_partition("01", 10)
    table.claim(keys, "a", T0)
    trips(table)

    table.abandon(keys, "a")

    assert trips(table) == 1
    assert set(table.claim(keys, "b", T0).values()) == {CLAIMED}


DONE_ROW = {"PartitionKey", "RowKey", "State", "Owner", "LeaseUntil", "UpdatedAt"}


def test_completing_own_claims_merges_under_if_match_and_leaves_only_the_done_entry(
    table: TableLedger, mocker: MockerFixture
) -> None:
    jobs = keys_in_partition("00", 3)
    # A lifecycle key whose row was a mark first: its completion was claimed and abandoned,
    # which leaves Superseded=false; the lifecycle claim then replaces that row.
    lifecycle = jobs[0].replace(":completed", ":in_progress")
    table.claim([jobs[0]], "b", T0)
    table.abandon([jobs[0]], "b")
    keys = [lifecycle, *jobs[1:]]
    assert set(table.claim(keys, "a", T0).values()) == {CLAIMED}
    submit = mocker.spy(table._transport, "submit")

    table.complete(keys, "a", T0)

    written = [operation for call in submit.call_args_list for operation in call.args[0]]
    modes = [(kind, options["mode"], options["match_condition"]) for kind, _, options in written]
    assert modes == [("update", UpdateMode.MERGE, MatchConditions.IfNotModified)] * 3
    # The ETag held the row at what the claim wrote, so the merge leaves what a replace would:
    # the done entry alone, no mark.
    rows = {row["RowKey"]: row for row in table._client.list_entities()}
    for key in keys:
        assert set(rows[key]) == DONE_ROW, key
        assert (rows[key]["State"], rows[key]["Owner"], rows[key]["LeaseUntil"]) == (
            "done",
            "a",
            T0,
        )
    assert set(table.claim(keys, "b", T0).values()) == {DONE}


class RecordingLedger(TableLedger):
    """A Table ledger that records the URL of every request it makes."""

    def __init__(self, storage: StorageSettings, settings: LedgerSettings) -> None:
        self.urls: list[str] = []
        super().__init__(storage, settings)

    def _count(self, response: Any) -> None:
        self.urls.append(unquote(str(response.http_request.url)))
        super()._count(response)


def test_claims_and_completions_never_query_with_a_filter(azurite: Azurite) -> None:
    # A filter ORing row keys is served as a partition scan, which grows with the retention.
    storage = StorageSettings(azurite.connection_string, None, "unused")
    ledger = RecordingLedger(storage, LedgerSettings(table_name=unique_table_name()))
    keys = [f"workflow_job:{n}:completed" for n in range(12)]
    lifecycle = [key.replace(":completed", ":queued") for key in keys]
    ledger.claim(keys[:6], "a", T0)
    ledger.complete(keys[:3], "a", T0)

    statuses = ledger.claim(keys + lifecycle[6:], "b", T0)
    ledger.complete([key for key, status in statuses.items() if status is CLAIMED], "b", T0)
    ledger.abandon(keys, "b")

    assert [statuses[key] for key in keys] == [DONE] * 3 + [BUSY] * 3 + [CLAIMED] * 6
    assert {statuses[key] for key in lifecycle[6:]} == {SUPERSEDED}
    assert ledger.urls
    assert not [url for url in ledger.urls if "$filter" in url]
    ledger.close()


class RacedLedger(TableLedger):
    """A Table ledger that lets a rival claim keys right after each of its first reads."""

    def __init__(
        self,
        rival: TableLedger,
        rounds: list[list[str]],
        storage: StorageSettings,
        settings: LedgerSettings,
    ) -> None:
        super().__init__(storage, settings)
        self._rival, self._rounds = rival, rounds

    def _read(self, partition: str, keys: list[str]) -> dict[str, TableEntity]:
        rows = super()._read(partition, keys)
        if self._rounds:
            self._rival.claim(self._rounds.pop(0), "rival", T0)
        return rows


def test_one_copy_of_a_known_event_costs_its_partition_a_read_and_a_second_write(
    table: TableLedger,
) -> None:
    keys = keys_in_partition("01", 8)
    table.claim(keys[3:4], "a", T0)
    table.complete(keys[3:4], "a", T0)
    trips(table)

    statuses = table.claim(keys, "b", T0)

    assert statuses == {key: DONE if key == keys[3] else CLAIMED for key in keys}
    # The blind insert fails on the known row, which is read alone; the rest is inserted.
    assert trips(table) == 3


@pytest.mark.parametrize(
    ("rounds", "expected_trips"),
    [
        # The blind insert fails on the key "a" holds, which is read alone (the rival claims
        # after it) and the insert tried again, failing on the rival's row; then the group is
        # read (5 rows) and written.
        pytest.param([[1]], 1 + 1 + 1 + 5 + 1, id="group-retried"),
        # The group's write fails twice more; then each of the 5 keys is read alone, and the
        # one still claimable (a's own) written.
        pytest.param([[1], [2], [3]], 1 + 1 + 1 + (5 + 1) * 2 + 5 + 1, id="key-by-key"),
    ],
)
def test_a_lost_race_is_resolved_without_a_double_claim(
    azurite: Azurite, table: TableLedger, rounds: list[list[int]], expected_trips: int
) -> None:
    # Given a batch of one partition, one of its keys already claimed by the same owner (so it
    # is read), and a rival that claims some of its keys between the read and the write
    keys = keys_in_partition("00", 4)
    lifecycle = keys[1].replace(":completed", ":queued")
    storage = StorageSettings(azurite.connection_string, None, "unused")
    settings = LedgerSettings(table_name=table.table_name, lease_s=LEASE_S)
    rival_rounds = [[keys[index] for index in indexes] for indexes in rounds]
    rival_keys = {key for batch in rival_rounds for key in batch}
    raced = RacedLedger(table, list(rival_rounds), storage, settings)
    assert raced.claim(keys[:1], "a", T0) == {keys[0]: CLAIMED}
    raced.round_trips = 0

    # When the batch transaction fails on the keys the rival inserted
    statuses = raced.claim([*keys, lifecycle], "a", T0)

    # Then the rival's keys are busy, every other key is claimed, and nothing is claimed twice
    assert statuses == {
        **{key: BUSY if key in rival_keys else CLAIMED for key in keys},
        lifecycle: SUPERSEDED,
    }
    assert raced.round_trips == expected_trips
    assert raced.complete(keys, "a", T0) == frozenset(rival_keys)
    raced.close()


def test_threads_claiming_the_same_keys_get_exactly_one_claim_per_key(azurite: Azurite) -> None:
    # Given 8 workers with clients of their own on one table, and keys over a few partitions
    table_name = unique_table_name()
    workers = [table_ledger(azurite, table_name) for _ in range(8)]
    workers[0].ensure_table()
    keys = keys_in_partition("00", 6) + keys_in_partition("01", 7)
    lifecycle = keys[0].replace(":completed", ":in_progress")
    batch = [*keys, lifecycle]
    results: dict[int, dict[str, ClaimStatus]] = {}
    start = threading.Barrier(len(workers))

    def work(index: int) -> None:
        start.wait()
        results[index] = workers[index].claim(batch, f"worker-{index}", T0)

    # When they all claim the batch at once
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then each key is claimed by exactly one worker and busy for all the others
    assert len(results) == len(workers)
    for key in keys:
        statuses = Counter(result[key] for result in results.values())
        assert statuses == Counter({CLAIMED: 1, BUSY: len(workers) - 1}), key
    assert {result[lifecycle] for result in results.values()} == {SUPERSEDED}
    for worker in workers:
        worker.close()


def test_a_stopped_azurite_is_unavailable_within_seconds(private_azurite: Azurite) -> None:
    storage = StorageSettings(private_azurite.connection_string, None, "unused")
    ledger = TableLedger(storage, LedgerSettings(table_name=unique_table_name()), FAST)
    key = "workflow_job:1:completed"
    assert ledger.claim([key], "a", T0) == {key: CLAIMED}
    private_azurite.stop()

    for call in (
        lambda: ledger.claim([key], "b", T0),
        lambda: ledger.complete([key], "a", T0),
        lambda: ledger.abandon([key], "a"),
        lambda: ledger.purge(T0),
        lambda: ledger.claim_purge_turn(T0, 60),
    ):
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable):
            call()
        assert time.monotonic() - started < 5
    ledger.close()

    # A fresh instance (in-memory Azurite keeps nothing) serves again, creating the table.
    with Azurite() as fresh:
        storage = StorageSettings(fresh.connection_string, None, "unused")
        again = TableLedger(storage, LedgerSettings(table_name=unique_table_name()), FAST)
        assert again.claim([key], "b", T0) == {key: CLAIMED}
        again.close()


def test_a_wrong_account_key_is_unavailable_not_an_sdk_error(azurite: Azurite) -> None:
    wrong_key = "A" * len(ACCOUNT_KEY.rstrip("=")) + "=="
    storage = StorageSettings(
        azurite.connection_string.replace(ACCOUNT_KEY, wrong_key), None, "unused"
    )
    ledger = TableLedger(storage, LedgerSettings(table_name=unique_table_name()), FAST)

    with pytest.raises(LedgerUnavailable, match="403"):
        ledger.claim(["workflow_job:1:completed"], "a", T0)
    ledger.close()


def test_create_table_ledger_creates_the_table_and_tolerates_an_outage(azurite: Azurite) -> None:
    storage = StorageSettings(azurite.connection_string, None, "unused")
    settings = LedgerSettings(table_name=unique_table_name())
    ledger = create_table_ledger(storage, settings)
    ledger.round_trips = 0

    assert ledger.purge(T0) == 0
    assert ledger.round_trips == 1  # the table existed: no create-and-retry
    ledger.close()

    unreachable = StorageSettings(
        azurite.connection_string.replace(f":{azurite.table_port}/", ":9/"), None, "unused"
    )
    offline = create_table_ledger(unreachable, settings, FAST)
    with pytest.raises(LedgerUnavailable):
        offline.claim(["workflow_job:1:completed"], "a", T0)
    offline.close()


def test_create_ledger_is_null_when_disabled(azurite: Azurite) -> None:
    storage = StorageSettings(azurite.connection_string, None, "unused")

    disabled = create_ledger(storage, LedgerSettings(enabled=False))
    enabled = create_ledger(storage, LedgerSettings(table_name=unique_table_name()))

    assert isinstance(disabled, NullLedger)
    assert isinstance(enabled, TableLedger)
    enabled.close()


def test_purge_pages_through_more_rows_than_one_transaction(table: TableLedger) -> None:
    keys = keys_in_partition("00", 150) + [f"workflow_job:{9000 + n}:completed" for n in range(30)]
    old = T0 - timedelta(days=10)
    table.complete(keys, "a", old)
    table.complete(["workflow_job:1:completed"], "a", T0)

    assert table.purge(T0 - timedelta(days=7)) == len(keys)
    assert table.claim(keys[:3] + ["workflow_job:1:completed"], "b", T0) == {
        **dict.fromkeys(keys[:3], CLAIMED),
        "workflow_job:1:completed": DONE,
    }
