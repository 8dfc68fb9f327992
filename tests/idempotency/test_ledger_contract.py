"""One ledger contract, run against the in-memory fake and Azure Tables on Azurite."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.idempotency import ClaimStatus, Ledger, LedgerSettings, purge_if_due
from backend.idempotency.layout import PARTITION_COUNT, partition_of
from tests.idempotency.conftest import LEASE_S, T0

CLAIMED, DONE, BUSY, SUPERSEDED = (
    ClaimStatus.CLAIMED,
    ClaimStatus.DONE,
    ClaimStatus.BUSY,
    ClaimStatus.SUPERSEDED,
)
JOB = "workflow_job:123:completed"
LEASE = timedelta(seconds=LEASE_S)


def test_a_fresh_key_is_claimed(ledger: Ledger) -> None:
    assert ledger.claim([JOB], "a", T0) == {JOB: CLAIMED}


def test_a_live_claim_is_busy_for_others_and_reentrant_for_its_owner(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)

    assert ledger.claim([JOB], "b", T0 + LEASE - timedelta(seconds=1)) == {JOB: BUSY}
    assert ledger.claim([JOB], "a", T0 + timedelta(seconds=5)) == {JOB: CLAIMED}


def test_a_completed_key_is_done_for_everyone(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)

    refused = ledger.complete([JOB], "a", T0 + timedelta(seconds=1))

    assert refused == frozenset()
    later = T0 + timedelta(days=3)
    assert [ledger.claim([JOB], owner, later) for owner in ("a", "b")] == [{JOB: DONE}] * 2


def test_completing_twice_is_harmless(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)
    ledger.complete([JOB], "a", T0)

    assert ledger.complete([JOB], "a", T0 + timedelta(seconds=1)) == frozenset()
    assert ledger.claim([JOB], "b", T0) == {JOB: DONE}


def test_after_the_lease_another_owner_takes_over_and_the_first_is_refused(
    ledger: Ledger,
) -> None:
    # Given a claim whose owner stalled past its lease
    ledger.claim([JOB], "a", T0)
    takeover = T0 + LEASE + timedelta(seconds=1)

    # When another owner claims it, then the first owner finishes
    assert ledger.claim([JOB], "b", takeover) == {JOB: CLAIMED}
    refused = ledger.complete([JOB], "a", takeover + timedelta(seconds=1))
    ledger.abandon([JOB], "a")

    # Then the first owner's completion and abandon change nothing: the key is still b's
    assert refused == frozenset({JOB})
    assert ledger.claim([JOB], "c", takeover + timedelta(seconds=2)) == {JOB: BUSY}
    assert ledger.complete([JOB], "b", takeover + timedelta(seconds=3)) == frozenset()
    assert ledger.complete([JOB], "a", takeover + timedelta(seconds=4)) == frozenset({JOB})
    assert ledger.claim([JOB], "c", takeover + timedelta(seconds=5)) == {JOB: DONE}


def test_an_expired_claim_nobody_took_over_can_still_be_completed(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)

    refused = ledger.complete([JOB], "a", T0 + 2 * LEASE)

    assert refused == frozenset()
    assert ledger.claim([JOB], "b", T0 + 2 * LEASE) == {JOB: DONE}


def test_completing_a_key_nobody_claimed_records_it_as_done(ledger: Ledger) -> None:
    assert ledger.complete([JOB], "a", T0) == frozenset()

    assert ledger.claim([JOB], "b", T0) == {JOB: DONE}


def test_an_abandoned_key_is_claimable_at_once(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)

    ledger.abandon([JOB], "a")

    assert ledger.claim([JOB], "b", T0 + timedelta(seconds=1)) == {JOB: CLAIMED}


def test_abandon_leaves_claims_of_other_owners_and_done_keys_alone(ledger: Ledger) -> None:
    done = "workflow_job:9:completed"
    ledger.claim([JOB, done], "a", T0)
    ledger.complete([done], "a", T0)

    ledger.abandon([JOB, done, "workflow_job:404:completed"], "b")
    ledger.abandon([done], "a")

    assert ledger.claim([JOB, done], "c", T0) == {JOB: BUSY, done: DONE}


def test_an_abandoned_completion_no_longer_supersedes_its_lifecycle_events(ledger: Ledger) -> None:
    lifecycle = ["workflow_job:123:queued", "workflow_job:123:in_progress"]
    ledger.claim([JOB], "a", T0)
    assert ledger.claim(lifecycle[:1], "b", T0) == {lifecycle[0]: SUPERSEDED}

    ledger.abandon([JOB], "a")

    assert ledger.claim(lifecycle, "b", T0) == dict.fromkeys(lifecycle, CLAIMED)
    # Claimed again, the completion supersedes them again, even one held by a live claim.
    assert ledger.claim([JOB], "b", T0) == {JOB: CLAIMED}
    assert ledger.claim(lifecycle[1:], "c", T0) == {lifecycle[1]: SUPERSEDED}


def test_an_abandoned_lifecycle_claim_stays_superseded_by_its_entitys_completion(
    ledger: Ledger,
) -> None:
    # Given a lifecycle event claimed by one worker, then its completion by another
    lifecycle = "workflow_job:123:in_progress"
    ledger.claim([lifecycle], "a", T0)
    ledger.claim([JOB], "b", T0)

    # When the first worker gives its claim up (a stop, a poison)
    ledger.abandon([lifecycle], "a")

    # Then a later copy of the lifecycle event is still superseded, not exported after all
    assert ledger.claim([lifecycle], "c", T0) == {lifecycle: SUPERSEDED}


def test_completing_a_completion_and_its_own_lifecycle_keys_together(ledger: Ledger) -> None:
    queued, waiting = "workflow_job:123:queued", "workflow_job:123:waiting"

    assert ledger.complete([JOB, queued], "a", T0) == frozenset()

    assert ledger.claim([queued, waiting, JOB], "b", T0) == {
        queued: DONE,
        waiting: SUPERSEDED,
        JOB: DONE,
    }


def test_abandoning_a_completion_and_its_own_lifecycle_keys_together(ledger: Ledger) -> None:
    queued = "workflow_job:123:queued"
    ledger.claim([queued], "a", T0)
    ledger.claim([JOB], "a", T0)

    ledger.abandon([JOB, queued], "a")

    # Neither was exported: both are free, and the abandoned completion supersedes nothing.
    assert ledger.claim([queued], "b", T0) == {queued: CLAIMED}
    assert ledger.claim([JOB], "b", T0) == {JOB: CLAIMED}


def test_a_completion_recorded_without_a_claim_still_supersedes(ledger: Ledger) -> None:
    ledger.complete([JOB], "a", T0)

    assert ledger.claim(["workflow_job:123:waiting"], "b", T0) == {
        "workflow_job:123:waiting": SUPERSEDED
    }


@pytest.mark.parametrize(
    ("completion", "lifecycle"),
    [
        ("workflow_job:123:completed", "workflow_job:123:in_progress"),
        ("workflow_job:123:completed", "workflow_job:123:queued"),
        ("workflow_job:123:completed", "workflow_job:123:waiting"),
        ("workflow_run:456:2:completed", "workflow_run:456:2:requested"),
        ("workflow_run:456:2:completed", "workflow_run:456:2:in_progress"),
    ],
)
def test_a_lifecycle_event_after_its_entitys_completion_is_superseded(
    ledger: Ledger, completion: str, lifecycle: str
) -> None:
    ledger.claim([completion], "a", T0)
    ledger.complete([completion], "a", T0)

    assert ledger.claim([lifecycle], "b", T0 + timedelta(hours=1)) == {lifecycle: SUPERSEDED}


def test_a_completion_claimed_by_another_owner_already_supersedes(ledger: Ledger) -> None:
    ledger.claim([JOB], "a", T0)

    assert ledger.claim(["workflow_job:123:in_progress"], "b", T0) == {
        "workflow_job:123:in_progress": SUPERSEDED
    }


def test_a_completion_in_the_same_batch_supersedes_its_lifecycle_events(ledger: Ledger) -> None:
    batch = ["workflow_job:123:in_progress", JOB, "workflow_job:123:queued"]

    statuses = ledger.claim(batch, "a", T0)

    assert statuses == {
        "workflow_job:123:in_progress": SUPERSEDED,
        JOB: CLAIMED,
        "workflow_job:123:queued": SUPERSEDED,
    }
    assert list(statuses) == batch


def test_only_the_same_entity_is_superseded(ledger: Ledger) -> None:
    ledger.complete(["workflow_run:456:1:completed", "workflow_job:123:completed"], "a", T0)

    statuses = ledger.claim(
        ["workflow_run:456:2:in_progress", "workflow_job:1234:in_progress"], "b", T0
    )

    assert statuses == {
        "workflow_run:456:2:in_progress": CLAIMED,
        "workflow_job:1234:in_progress": CLAIMED,
    }


def test_lifecycle_events_before_completion_are_claimed_and_completion_still_works(
    ledger: Ledger,
) -> None:
    assert ledger.claim(["workflow_job:123:in_progress"], "a", T0) == {
        "workflow_job:123:in_progress": CLAIMED
    }
    ledger.complete(["workflow_job:123:in_progress"], "a", T0)

    assert ledger.claim([JOB], "b", T0) == {JOB: CLAIMED}
    assert ledger.claim(["workflow_job:123:in_progress"], "b", T0) == {
        "workflow_job:123:in_progress": DONE
    }


def test_a_batch_of_32_keys_across_partitions(ledger: Ledger) -> None:
    keys = [f"workflow_job:{1000 + index}:completed" for index in range(32)]
    assert len({partition_of(key) for key in keys}) >= PARTITION_COUNT - 1

    first = ledger.claim(keys, "a", T0)
    refused = ledger.complete(keys, "a", T0 + timedelta(seconds=1))
    second = ledger.claim(keys, "b", T0 + timedelta(seconds=2))

    assert first == dict.fromkeys(keys, CLAIMED)
    assert refused == frozenset()
    assert second == dict.fromkeys(keys, DONE)


def test_a_batch_mixing_every_status(ledger: Ledger) -> None:
    done, busy, fresh = (f"workflow_job:{n}:completed" for n in (1, 2, 3))
    ledger.claim([done, busy], "a", T0)
    ledger.complete([done], "a", T0)

    statuses = ledger.claim([fresh, busy, done, "workflow_job:1:in_progress", fresh], "b", T0)

    assert statuses == {
        fresh: CLAIMED,
        busy: BUSY,
        done: DONE,
        "workflow_job:1:in_progress": SUPERSEDED,
    }


def test_a_reopened_key_is_claimed_and_exported_again(ledger: Ledger) -> None:
    # Given a key completed when its item was poisoned
    ledger.claim([JOB], "a", T0)
    ledger.complete([JOB], "a", T0)

    # When a replay reopens it (twice: a replay run again after an interruption)
    ledger.reopen([JOB])
    ledger.reopen([JOB])

    # Then its replayed copy is claimed, and done once completed again
    assert ledger.claim([JOB], "b", T0 + timedelta(days=1)) == {JOB: CLAIMED}
    assert ledger.complete([JOB], "b", T0 + timedelta(days=1)) == frozenset()
    assert ledger.claim([JOB], "c", T0 + timedelta(days=1)) == {JOB: DONE}


def test_reopen_leaves_claims_and_unknown_keys_alone(ledger: Ledger) -> None:
    held, expired = "workflow_job:1:completed", "workflow_job:2:completed"
    ledger.claim([held], "a", T0 + LEASE)
    ledger.claim([expired], "a", T0 - LEASE)

    ledger.reopen([held, expired, "workflow_job:404:completed"])

    assert ledger.claim([held], "b", T0 + LEASE) == {held: BUSY}
    assert ledger.complete([held, expired], "a", T0 + LEASE) == frozenset()
    assert ledger.claim([held, expired], "b", T0 + LEASE) == {held: DONE, expired: DONE}


def test_a_reopened_completion_no_longer_supersedes_its_lifecycle_events(ledger: Ledger) -> None:
    # Given a completed job whose in_progress was exported before, and a queued never seen
    in_progress, queued = "workflow_job:123:in_progress", "workflow_job:123:queued"
    ledger.complete([in_progress], "a", T0)
    ledger.claim([JOB], "a", T0)
    ledger.complete([JOB], "a", T0)

    ledger.reopen([JOB])

    # Then the exported in_progress stays done, the queued is free until the job is claimed
    assert ledger.claim([in_progress, queued], "b", T0) == {in_progress: DONE, queued: CLAIMED}
    ledger.abandon([queued], "b")
    assert ledger.claim([JOB], "b", T0) == {JOB: CLAIMED}
    assert ledger.claim([queued], "c", T0) == {queued: SUPERSEDED}


def test_a_reopened_lifecycle_key_stays_superseded_by_its_entitys_completion(
    ledger: Ledger,
) -> None:
    in_progress = "workflow_job:123:in_progress"
    ledger.complete([in_progress], "a", T0)
    ledger.complete([JOB], "a", T0)

    ledger.reopen([in_progress])

    assert ledger.claim([in_progress, JOB], "b", T0) == {in_progress: SUPERSEDED, JOB: DONE}


def test_reopening_a_completion_and_its_own_lifecycle_keys_together(ledger: Ledger) -> None:
    in_progress, waiting = "workflow_job:123:in_progress", "workflow_job:123:waiting"
    ledger.complete([in_progress], "a", T0)
    ledger.complete([JOB], "a", T0)

    ledger.reopen([in_progress, JOB])

    assert ledger.claim([in_progress, waiting], "b", T0) == {in_progress: CLAIMED, waiting: CLAIMED}


def test_an_empty_batch_costs_nothing(ledger: Ledger) -> None:
    assert ledger.claim([], "a", T0) == {}
    assert ledger.complete([], "a", T0) == frozenset()
    ledger.abandon([], "a")
    ledger.reopen([])


def test_purge_removes_old_entries_only(ledger: Ledger) -> None:
    # Given an entry done 8 days ago, one done now and one claimed now
    old, recent, held = (f"workflow_job:{n}:completed" for n in (1, 2, 3))
    long_ago = T0 - timedelta(days=8)
    ledger.claim([old], "a", long_ago)
    ledger.complete([old], "a", long_ago)
    ledger.claim([recent, held], "a", T0)
    ledger.complete([recent], "a", T0)

    # When entries older than 7 days are purged
    purged = ledger.purge(T0 - timedelta(days=7))

    # Then only the old one is gone
    assert purged == 1
    assert ledger.claim([old, recent, held], "b", T0) == {old: CLAIMED, recent: DONE, held: BUSY}
    assert ledger.purge(T0 - timedelta(days=7)) == 0


def test_one_purge_turn_per_interval(ledger: Ledger) -> None:
    hour = timedelta(hours=1)

    turns = [
        ledger.claim_purge_turn(T0, 3600),
        ledger.claim_purge_turn(T0 + hour / 2, 3600),
        ledger.claim_purge_turn(T0 + hour, 3600),
    ]

    assert turns == [True, False, True]


def test_purge_if_due_purges_once_per_interval_with_the_retention(ledger: Ledger) -> None:
    settings = LedgerSettings(retention_h=72, purge_interval_s=3600)
    ledger.complete(["workflow_job:1:completed"], "a", T0 - timedelta(hours=73))
    ledger.complete(["workflow_job:2:completed"], "a", T0 - timedelta(hours=71))

    assert purge_if_due(ledger, settings, T0) == 1
    assert purge_if_due(ledger, settings, T0 + timedelta(minutes=1)) is None


def test_times_must_be_timezone_aware(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.claim([JOB], "a", T0.replace(tzinfo=None))


@pytest.mark.parametrize("key", ["nocolon", ":completed", "workflow_job:1:", "a/b:completed"])
def test_malformed_keys_are_refused_before_any_io(ledger: Ledger, key: str) -> None:
    with pytest.raises(ValueError, match="event key"):
        ledger.claim([key], "a", T0)
