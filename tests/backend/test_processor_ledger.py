"""Each claim status decides the message: export once, skip a duplicate, hide a busy copy."""

from __future__ import annotations

import json
import logging

import pytest

from backend.idempotency.ledger import EntryState
from backend.outcome import Outcome
from backend.processor import Processor
from backend.sinks.memory import RecordingSink
from tests.backend.conftest import MAX_DEQUEUE_COUNT, VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text
from tests.backend.ledgered import (
    JOB_ITEMS,
    JOB_KEY,
    LEASE_S,
    OWNER,
    CountingLedger,
    job_text,
    wall_clock,
)
from tools.payloads import JOB_ID, RUN_ID, workflow_job_payload, workflow_run_payload

RUN_KEY = f"workflow_run:{RUN_ID}:1:completed"


def log_lines(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_a_claimed_event_is_exported_then_completed_then_deleted(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    queue.send(message_text(workflow_run_payload("completed"), delivery_id="d-run"))

    worker = make_worker(processor)
    worker.work(burst=True)

    assert sorted(sink.names) == sorted(JOB_ITEMS + ["WorkflowRun"])
    # One claim for the whole batch, before the export; one completion after it.
    assert [(m, sorted(k)) for m, k, _ in ledger.calls if m != "claim_purge_turn"] == [
        ("claim", sorted([JOB_KEY, RUN_KEY])),
        ("complete", sorted([JOB_KEY, RUN_KEY])),
    ]
    assert {ledger.entries[k].state for k in (JOB_KEY, RUN_KEY)} == {EntryState.DONE}
    assert worker.counts == {Outcome.DONE: 2}
    assert len(queue) == 0


@pytest.mark.parametrize("delivery_id", ["d-1", "d-other-hook"], ids=["redelivery", "two-hooks"])
def test_a_copy_of_an_exported_event_is_deleted_without_export(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
    delivery_id: str,
) -> None:
    ledger.complete([JOB_KEY], "an-earlier-worker", wall_clock(fake_time))
    queue.send(job_text(delivery_id=delivery_id))

    with caplog.at_level(logging.INFO, logger="backend"):
        worker = make_worker(processor)
        worker.work(burst=True)

    assert sink.exports == []
    assert len(queue) == 0
    assert worker.counts == {Outcome.DONE: 1}
    [line] = log_lines(caplog, f"(delivery {delivery_id})")
    assert line.endswith(
        f"done: duplicate: event {JOB_KEY} was already exported (ledger), not exported again"
    )


def test_copies_of_one_event_in_one_batch_are_exported_once_and_all_deleted(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = queue.send(job_text(delivery_id="d-1"))
    queue.send(job_text(delivery_id="d-1"))
    queue.send(job_text(delivery_id="d-2"))

    with caplog.at_level(logging.INFO, logger="backend"):
        worker = make_worker(processor)
        worker.work(burst=True)

    assert sink.names == JOB_ITEMS
    assert ledger.methods() == ["claim", "complete"]
    assert worker.counts == {Outcome.DONE: 3}
    assert len(queue) == 0
    assert len(log_lines(caplog, f"same event as message {first} in this batch")) == 2


@pytest.mark.parametrize("same_batch", [False, True], ids=["later-batch", "same-batch"])
def test_a_lifecycle_event_after_its_completion_is_superseded(
    queue: CountingQueue,
    sink: RecordingSink,
    processor: Processor,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
    same_batch: bool,
) -> None:
    queue.send(job_text("completed", delivery_id="d-completed"))
    worker = make_worker(processor)
    if not same_batch:
        worker.work(burst=True)
    queue.send(job_text("in_progress", delivery_id="d-late"))
    queue.send(job_text("queued", delivery_id="d-later"))

    with caplog.at_level(logging.INFO, logger="backend"):
        worker.work(burst=True)

    # The finished job never looks queued or running again.
    assert sink.names == JOB_ITEMS
    assert len(queue) == 0
    for delivery_id in ("d-late", "d-later"):
        [line] = log_lines(caplog, f"(delivery {delivery_id})")
        assert line.endswith(
            f"done: late lifecycle event: workflow_job:{JOB_ID} has already completed (ledger), "
            "not exported"
        )


def test_a_busy_event_is_hidden_until_the_other_claim_can_expire_then_exported(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    # Given another worker that claimed the event and then died without completing it
    ledger.claim([JOB_KEY], "a-dead-worker", wall_clock(fake_time))
    queue.send(job_text())

    # When this worker receives a copy
    worker = make_worker(processor)
    worker.work(burst=True)

    # Then it exports nothing and keeps the copy hidden for a lease, not a visibility timeout
    assert (sink.exports, worker.counts) == ([], {Outcome.RETRY: 1})
    assert queue.calls["extend"] == 1
    fake_time.now += LEASE_S - 1
    assert queue.receive(32, VISIBILITY_S) == []

    # And once the dead worker's lease has passed, the copy is claimed and exported
    fake_time.now += 1
    worker.work(burst=True)
    assert sink.names == JOB_ITEMS
    assert len(queue) == 0
    assert ledger.entries[JOB_KEY].owner == OWNER


def test_a_busy_copy_does_not_climb_towards_poison(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    worker = make_worker(processor)
    for _ in range(3 * MAX_DEQUEUE_COUNT):
        ledger.claim([JOB_KEY], "a-slow-worker", wall_clock(fake_time))  # renews its lease
        worker.work(burst=True)
        fake_time.now += LEASE_S

    [held] = queue.stored()
    assert held.dequeue_count == 3 * MAX_DEQUEUE_COUNT  # once per lease, never in between
    assert queue.dead_letters == []
    assert sink.exports == []


def test_an_overdelivered_copy_of_an_exported_event_is_deleted_not_poisoned(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    ledger.complete([JOB_KEY], "an-earlier-worker", wall_clock(fake_time))
    queue.send(job_text())
    for _ in range(MAX_DEQUEUE_COUNT):
        [message] = queue.receive(1, visibility_timeout_s=VISIBILITY_S)
        queue.release(message)

    worker = make_worker(processor)
    worker.work(burst=True)

    assert queue.dead_letters == []
    assert len(queue) == 0
    assert worker.counts == {Outcome.DONE: 1}


def test_an_overdelivered_message_is_poisoned_and_its_claim_released(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    for _ in range(MAX_DEQUEUE_COUNT):
        [message] = queue.receive(1, visibility_timeout_s=VISIBILITY_S)
        queue.release(message)

    make_worker(processor).work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert record["reason"] == (
        f"received {MAX_DEQUEUE_COUNT + 1} times, more than MAX_DEQUEUE_COUNT ({MAX_DEQUEUE_COUNT})"
    )
    assert sink.exports == []
    assert ledger.methods() == ["claim", "abandon"]
    assert JOB_KEY not in ledger.entries  # any later copy may be claimed at once


def test_items_the_sink_rejects_poison_the_message_and_release_its_claim(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    sink.reject = lambda item: item.name == "WorkflowStep"

    make_worker(processor).work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert record["reason"].startswith("the sink rejected 4 of 5 items")
    assert ledger.methods() == ["claim", "abandon"]
    assert JOB_KEY not in ledger.entries


def test_an_undecodable_message_is_poisoned_without_touching_the_ledger(
    queue: CountingQueue,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
) -> None:
    queue.send("not an envelope")
    queue.send(message_text(workflow_job_payload("completed", id=None)))

    make_worker(processor).work(burst=True)

    assert len(queue.dead_letters) == 2
    assert ledger.methods() == []
