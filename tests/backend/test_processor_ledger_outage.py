"""The ledger through failures: outages hold the batch, held claims are renewed or released."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from backend.idempotency.ledger import EntryState
from backend.outcome import Outcome
from backend.processor import Processor
from backend.sinks.base import ExportResult
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from tests.backend.conftest import MAX_DEQUEUE_COUNT, VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime
from tests.backend.ledgered import (
    JOB_ITEMS,
    JOB_KEY,
    LEASE_S,
    CountingLedger,
    job_text,
    wall_clock,
)
from tools.payloads import RECEIVED_AT


def test_a_sink_outage_renews_the_claim_before_every_retry(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    sink.failing = True
    outage_s = 4 * LEASE_S

    def end_outage(_seconds: float) -> None:
        if fake_time.now >= 1000.0 + outage_s:
            sink.failing = False

    fake_time.on_sleep = end_outage

    worker = make_worker(processor)
    worker.work(burst=True)

    claims = [now for method, _keys, now in ledger.calls if method == "claim" and now is not None]
    assert len(claims) == len(sink.exports)
    # Never a gap of a whole lease between two claims: nobody could take the event over.
    gaps = [later - earlier for earlier, later in zip(claims, claims[1:], strict=False)]
    assert gaps and max(gaps) < timedelta(seconds=LEASE_S)
    assert sink.names == JOB_ITEMS
    assert ledger.entries[JOB_KEY].state is EntryState.DONE
    assert worker.counts == {Outcome.DONE: 1}


def test_a_ledger_outage_holds_the_batch_and_poisons_nothing(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue.send(job_text(delivery_id="d-1"))
    queue.send(job_text(delivery_id="d-2"))
    ledger.unavailable = True
    outage_s = 20 * MAX_DEQUEUE_COUNT * VISIBILITY_S
    stolen: list[int] = []

    def during_outage(_seconds: float) -> None:
        stolen.append(len(queue.receive(32, visibility_timeout_s=VISIBILITY_S)))
        if fake_time.now >= 1000.0 + outage_s:
            ledger.unavailable = False

    fake_time.on_sleep = during_outage

    with caplog.at_level(logging.INFO, logger="backend"):
        worker = make_worker(processor)
        worker.work(burst=True)

    assert set(stolen) == {0}  # held and extended: no other worker saw the messages
    assert sink.exports == [sink.items]  # exported once, after the ledger came back
    assert sink.names == JOB_ITEMS
    assert queue.dead_letters == []
    assert worker.counts == {Outcome.DONE: 2}
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if m.startswith("ledger unavailable (")]) == 1
    assert len([m for m in messages if m.startswith("ledger answers again")]) == 1


def test_a_ledger_outage_after_the_export_retries_the_completion_not_the_export(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    real_export = sink.export

    def export_then_lose_the_ledger(items: Sequence[TelemetryItem]) -> ExportResult:
        ledger.unavailable = True
        return real_export(items)

    sink.export = export_then_lose_the_ledger  # type: ignore[method-assign]

    def recover_after_three(_seconds: float) -> None:
        if len(fake_time.sleeps) == 3:
            ledger.unavailable = False

    fake_time.on_sleep = recover_after_three

    worker = make_worker(processor)
    worker.work(burst=True)

    assert len(sink.exports) == 1
    assert sink.names == JOB_ITEMS
    assert ledger.methods() == ["claim"] + ["complete"] * 4  # three failed, then recorded
    assert ledger.entries[JOB_KEY].state is EntryState.DONE
    assert (worker.counts, len(queue)) == ({Outcome.DONE: 1}, 0)


def test_a_completion_refused_after_a_takeover_still_deletes_and_warns(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue.send(job_text())
    real_export = sink.export

    def export_slower_than_the_lease(items: Sequence[TelemetryItem]) -> ExportResult:
        fake_time.now += LEASE_S + 1
        ledger.claim([JOB_KEY], "a-rival", wall_clock(fake_time))  # takes the expired claim
        return real_export(items)

    sink.export = export_slower_than_the_lease  # type: ignore[method-assign]

    with caplog.at_level(logging.INFO):
        worker = make_worker(processor)
        worker.work(burst=True)

    assert sink.names == JOB_ITEMS
    assert (worker.counts, len(queue)) == ({Outcome.DONE: 1}, 0)
    [warning] = [r for r in caplog.records if "may be duplicated" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert JOB_KEY in warning.getMessage()
    assert ledger.entries[JOB_KEY].owner == "a-rival"


def test_a_stop_while_holding_releases_the_messages_and_their_claims(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(job_text())
    sink.failing = True

    def stop_after_a_while(_seconds: float) -> None:
        if fake_time.now > 1000.0 + 2 * VISIBILITY_S:
            fake_time.stopper.request()

    fake_time.on_sleep = stop_after_a_while

    worker = make_worker(processor)
    worker.work()

    assert worker.counts == {Outcome.RETRY: 1}
    assert ledger.methods()[-1] == "abandon"
    assert JOB_KEY not in ledger.entries  # the next worker claims it at once, not after a lease
    [message] = queue.receive(32, visibility_timeout_s=VISIBILITY_S)
    assert message.dequeue_count == 2


def test_the_ledger_is_purged_between_batches_once_per_interval(
    queue: CountingQueue,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    stale = "workflow_job:1:completed"
    ledger.complete([stale], "long-ago", wall_clock(fake_time) - timedelta(days=8))
    for index in range(3):
        queue.send(job_text(delivery_id=f"d-{index}", id=100 + index))

    make_worker(processor, max_messages_per_batch=1).work(burst=True)

    turns = [now for method, _keys, now in ledger.calls if method == "claim_purge_turn"]
    assert len(turns) == 1  # three batches, one check: the next is due an interval later
    assert stale not in ledger.entries
    assert len(ledger.entries) == 3


def test_without_a_ledger_every_copy_is_exported(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    # LEDGER_ENABLED=false: the null ledger claims everything, so a copy in another batch is
    # exported again (copies within one batch are still exported once).
    queue.send(job_text(delivery_id="d-1"))
    queue.send(job_text(delivery_id="d-1"))

    make_worker(Processor(sink, MAX_DEQUEUE_COUNT), max_messages_per_batch=1).work(burst=True)

    assert sink.names == JOB_ITEMS * 2
    assert len(queue) == 0


def test_a_stop_after_the_export_while_the_ledger_is_down_deletes_the_message(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue.send(job_text())
    real_export = sink.export

    def export_then_lose_the_ledger(items: Sequence[TelemetryItem]) -> ExportResult:
        ledger.unavailable = True
        return real_export(items)

    sink.export = export_then_lose_the_ledger  # type: ignore[method-assign]
    fake_time.on_sleep = lambda _seconds: fake_time.stopper.request()

    with caplog.at_level(logging.WARNING):
        worker = make_worker(processor)
        worker.work()

    assert (sink.names, len(sink.exports)) == (JOB_ITEMS, 1)
    assert (worker.counts, len(queue), queue.dead_letters) == ({Outcome.DONE: 1}, 0, [])
    [warning] = [r for r in caplog.records if "could not record its completion" in r.getMessage()]
    assert JOB_KEY in warning.getMessage()


def test_processing_lag_is_measured_at_the_export_that_succeeds(
    queue: CountingQueue, sink: RecordingSink, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    def now() -> datetime:
        return RECEIVED_AT + timedelta(seconds=fake_time.now - 1000.0 + 2.0)

    queue.send(job_text())
    sink.fail_next(3)

    worker = make_worker(Processor(sink, MAX_DEQUEUE_COUNT, now=now))
    worker.work(burst=True)

    [job] = [item for item in sink.items if item.name == "WorkflowJob"]
    # Mapped 2 s after it was received, exported after three backoffs (0.5 + 1 + 2 s).
    assert job.measurements["processing_lag_seconds"] == 5.5
