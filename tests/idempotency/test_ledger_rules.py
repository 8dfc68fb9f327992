"""The pure parts of the ledger: key rules, settings, partitioning, the null and fake ledgers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.idempotency import (
    ClaimStatus,
    InMemoryLedger,
    LedgerSettings,
    LedgerUnavailable,
    NullLedger,
    claim_round_trips_bound,
    entity_of,
    load_ledger_settings,
    owner_id,
)
from backend.idempotency.batch import Operation
from backend.idempotency.layout import (
    PARTITION_COUNT,
    groups,
    partition_of,
    transactions,
    writes_of,
)
from backend.idempotency.ledger import (
    LIFECYCLE_ACTIONS,
    completion_key,
    completions_first,
    is_lifecycle,
    lifecycle_keys,
)
from backend.telemetry.mapping import MAPPERS
from common.settings import SettingsError
from tests.idempotency.conftest import T0


@pytest.mark.parametrize(
    ("key", "entity", "completion", "lifecycle"),
    [
        ("workflow_job:123:completed", "workflow_job:123", "workflow_job:123:completed", False),
        ("workflow_job:123:in_progress", "workflow_job:123", "workflow_job:123:completed", True),
        (
            "workflow_run:456:2:requested",
            "workflow_run:456:2",
            "workflow_run:456:2:completed",
            True,
        ),
    ],
)
def test_key_anatomy(key: str, entity: str, completion: str, lifecycle: bool) -> None:
    assert (entity_of(key), completion_key(key), is_lifecycle(key)) == (
        entity,
        completion,
        lifecycle,
    )


def test_completions_come_first_and_repeats_go() -> None:
    keys = ["a:1:queued", "a:1:completed", "b:2:completed", "a:1:queued"]

    assert completions_first(keys) == ["a:1:completed", "b:2:completed", "a:1:queued"]


def test_every_action_of_an_entity_shares_its_partition() -> None:
    actions = ["queued", "waiting", "in_progress", "completed"]

    assert len({partition_of(f"workflow_job:42:{action}") for action in actions}) == 1
    assert len({partition_of(f"workflow_job:{n}:completed") for n in range(1000)}) == (
        PARTITION_COUNT
    )


def test_round_trip_bound_is_one_transaction_per_group() -> None:
    same_entity = ["workflow_job:42:queued", "workflow_job:42:in_progress"]

    assert claim_round_trips_bound(same_entity) == 1
    assert claim_round_trips_bound([]) == 0


def test_a_group_never_holds_more_writes_than_one_transaction_takes() -> None:
    # 60 job completions of one partition: each writes its row and marks 3 lifecycle keys.
    keys = [k for n in range(400) if partition_of(k := f"workflow_job:{n}:completed") == "01"]
    batch = keys[:60] + [key.replace(":completed", ":queued") for key in keys[:60]]

    chunks = groups(completions_first(batch))

    assert sum(len(chunk) for _, chunk in chunks) == len(batch)
    assert all(sum(writes_of(key) for key in chunk) <= 100 for _, chunk in chunks)
    # An entity's keys share a transaction, so its completion supersedes them there.
    for _, chunk in chunks:
        assert {key.replace(":queued", ":completed") for key in chunk} <= set(chunk)


def test_transactions_keep_each_keys_writes_whole_and_never_exceed_100() -> None:
    writes: list[list[Operation]] = [[("upsert", {"RowKey": str(n)}, {})] * 4 for n in range(60)]

    batches = list(transactions(writes))

    assert [len(batch) for batch in batches] == [100, 100, 40]
    assert list(transactions([])) == []


def test_the_lifecycle_actions_are_the_ones_the_telemetry_maps() -> None:
    mapped = {
        event: tuple(action for action in actions if action != "completed")
        for event, actions in MAPPERS.items()
    }

    assert mapped == LIFECYCLE_ACTIONS
    assert lifecycle_keys("workflow_run:9:2:completed") == [
        "workflow_run:9:2:requested",
        "workflow_run:9:2:in_progress",
    ]


def test_settings_defaults() -> None:
    assert load_ledger_settings({}) == LedgerSettings(
        enabled=True,
        table_name="githubtelemetryledger",
        lease_s=600,
        retention_h=168,
        purge_interval_s=3600,
    )
    assert LedgerSettings().retention == timedelta(days=7)


def test_settings_prefer_backend_names_and_derive_the_lease_from_visibility() -> None:
    settings = load_ledger_settings(
        {
            "BACKEND_LEDGER_TABLE_NAME": "backendledger",
            "LEDGER_TABLE_NAME": "sharedledger",
            "VISIBILITY_TIMEOUT_SECONDS": "120",
            "LEDGER_RETENTION_HOURS": "96",
            "BACKEND_LEDGER_ENABLED": "no",
            "LEDGER_PURGE_INTERVAL_SECONDS": "900",
        }
    )

    assert settings == LedgerSettings(
        enabled=False,
        table_name="backendledger",
        lease_s=240,
        retention_h=96,
        purge_interval_s=900,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEDGER_TABLE_NAME": "has-dash"}, "LEDGER_TABLE_NAME"),
        ({"LEDGER_TABLE_NAME": "1ledger"}, "LEDGER_TABLE_NAME"),
        ({"LEDGER_TABLE_NAME": "tables"}, "LEDGER_TABLE_NAME"),
        ({"LEDGER_RETENTION_HOURS": "24"}, "at least 72"),
        ({"LEDGER_LEASE_SECONDS": "abc"}, "must be a number"),
        ({"LEDGER_LEASE_SECONDS": "299"}, "VISIBILITY_TIMEOUT_SECONDS"),
        ({"LEDGER_ENABLED": "maybe"}, "true or false"),
        ({"LEDGER_PURGE_INTERVAL_SECONDS": "1.5"}, "at least 60"),
    ],
)
def test_bad_settings_say_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_ledger_settings(env)


def test_owner_ids_are_unique_per_call() -> None:
    assert owner_id() != owner_id()


def test_the_null_ledger_claims_everything_always() -> None:
    ledger = NullLedger()
    keys = ["workflow_job:1:completed", "workflow_job:1:in_progress", "workflow_job:1:completed"]

    ledger.complete(keys, "a", T0)

    assert ledger.claim(keys, "b", T0) == {
        "workflow_job:1:completed": ClaimStatus.CLAIMED,
        "workflow_job:1:in_progress": ClaimStatus.CLAIMED,
    }
    assert (ledger.purge(T0), ledger.claim_purge_turn(T0, 60)) == (0, False)


def test_the_fake_can_be_made_unavailable() -> None:
    ledger = InMemoryLedger()
    ledger.unavailable = True

    with pytest.raises(LedgerUnavailable):
        ledger.claim(["workflow_job:1:completed"], "a", T0)
