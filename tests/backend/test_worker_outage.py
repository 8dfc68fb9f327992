"""Through a sink outage the worker holds its batch: no new receives, visibility extended."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from backend.outcome import Outcome
from backend.sinks.base import ExportResult
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from tests.backend.conftest import MAX_DEQUEUE_COUNT, VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text
from tools.payloads import workflow_job_payload, workflow_run_payload


def test_a_short_sink_failure_retries_the_export_with_backoff(
    queue: CountingQueue, sink: RecordingSink, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    sink.fail_next(3)

    worker = make_worker()
    worker.work(burst=True)

    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert len(sink.exports) == 4
    assert sink.names == ["WorkflowRun"]
    assert worker.counts == {Outcome.DONE: 1}
    assert queue.calls["receive"] == 2  # the batch, then the empty receive that ends the burst


def test_a_long_outage_poisons_nothing_and_keeps_the_batch_hidden(
    queue: CountingQueue,
    sink: RecordingSink,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    queue.send(message_text(workflow_job_payload("completed")))
    sink.failing = True
    outage_s = 20 * MAX_DEQUEUE_COUNT * VISIBILITY_S
    stolen: list[int] = []

    def during_outage(_seconds: float) -> None:
        # Another consumer must never see the held messages: their visibility is extended.
        stolen.append(len(queue.receive(32, visibility_timeout_s=VISIBILITY_S)))
        if fake_time.now >= 1000.0 + outage_s:
            sink.failing = False

    fake_time.on_sleep = during_outage

    with caplog.at_level(logging.INFO):
        worker = make_worker()
        worker.work(burst=True)

    assert fake_time.now >= 1000.0 + outage_s
    assert set(stolen) == {0}
    assert queue.calls["extend"] >= 2 * outage_s / VISIBILITY_S
    assert max(fake_time.sleeps) <= VISIBILITY_S / 2
    assert queue.dead_letters == []
    assert sorted(sink.names) == ["WorkflowJob", "WorkflowRun"] + ["WorkflowStep"] * 4
    assert worker.counts == {Outcome.DONE: 2}
    assert queue.calls["receive"] - len(stolen) == 2  # the batch, then the empty receive
    outage_lines = [r for r in caplog.records if "export failed" in r.getMessage()]
    assert len(outage_lines) == 1
    assert len([r for r in caplog.records if "sink answers again" in r.getMessage()]) == 1


def test_only_items_not_yet_accepted_are_exported_again(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_job_payload("completed")))
    real_export = sink.export
    calls = 0

    def half_then_all(items: Sequence[TelemetryItem]) -> ExportResult:
        nonlocal calls
        calls += 1
        if calls > 1:
            return real_export(items)
        sink.items.extend(items[:2])
        return ExportResult(accepted=(0, 1), retryable=(2, 3, 4), detail="HTTP 206")

    sink.export = half_then_all  # type: ignore[method-assign]

    make_worker().work(burst=True)

    assert sink.names == ["WorkflowJob"] + ["WorkflowStep"] * 4
    assert [item.name for item in sink.exports[-1]] == ["WorkflowStep"] * 3
    assert len(queue) == 0


def test_stop_during_an_outage_releases_the_held_messages(
    queue: CountingQueue,
    sink: RecordingSink,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    sink.failing = True

    def stop_after_a_while(_seconds: float) -> None:
        if fake_time.now > 1000.0 + 3 * VISIBILITY_S:
            fake_time.stopper.request()

    fake_time.on_sleep = stop_after_a_while

    worker = make_worker()
    worker.work()

    [message] = queue.receive(32, visibility_timeout_s=VISIBILITY_S)
    assert message.dequeue_count == 2  # released, visible at once; the hold counted nothing
    assert queue.dead_letters == []
    assert worker.counts == {Outcome.RETRY: 1}
    assert queue.calls["receive"] == 2  # the batch and the peek above


def test_a_retry_after_hint_lengthens_the_wait(
    queue: CountingQueue, sink: RecordingSink, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    sink.fail_next(1)
    sink.retry_after_s = 3.0

    make_worker().work(burst=True)

    assert fake_time.sleeps == [3.0]
