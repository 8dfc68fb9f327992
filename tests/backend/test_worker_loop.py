"""The loop itself: polling, queue backoff, two-stage shutdown."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence

import pytest

from backend.outcome import Outcome
from backend.shutdown import StopNow, Stopper
from backend.sinks.base import ExportResult
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from tests.backend.conftest import VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text
from tools.payloads import workflow_job_payload, workflow_run_payload


def test_the_poll_interval_is_slept_only_after_an_empty_receive(
    queue: CountingQueue, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    for index in range(5):
        queue.send(message_text(workflow_run_payload("completed"), delivery_id=f"d-{index}"))
    fake_time.on_sleep = lambda _seconds: fake_time.stopper.request()

    make_worker(max_messages_per_batch=2).work()

    assert queue.calls["receive"] == 4  # 2 + 2 + 1, then empty
    assert fake_time.sleeps == [5.0]


def test_an_unreachable_queue_is_retried_with_capped_backoff_and_logged_once(
    queue: CountingQueue,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue.unavailable = True

    def recover_after_eight(_seconds: float) -> None:
        if len(fake_time.sleeps) == 8:
            queue.unavailable = False

    fake_time.on_sleep = recover_after_eight

    with caplog.at_level(logging.INFO, logger="backend"):
        make_worker().work(burst=True)

    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "unreachable" in m]) == 1
    assert len([m for m in messages if "reachable again after 8 failed receives" in m]) == 1


def test_a_stop_mid_batch_finishes_and_settles_the_batch_then_stops(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory, stopper: Stopper
) -> None:
    queue.send(message_text(workflow_run_payload("completed"), delivery_id="first"))
    queue.send(message_text(workflow_job_payload("completed"), delivery_id="second"))
    real_export = sink.export

    def export_then_signal(items: Sequence[TelemetryItem]) -> ExportResult:
        stopper.on_signal(signal.SIGTERM, None)
        return real_export(items)

    sink.export = export_then_signal  # type: ignore[method-assign]

    worker = make_worker(max_messages_per_batch=1)
    worker.work()

    assert sink.names == ["WorkflowRun"]
    assert worker.counts == {Outcome.DONE: 1}
    [untouched] = queue.stored()
    assert untouched.dequeue_count == 0
    assert queue.calls["receive"] == 1


def test_a_second_signal_stops_at_once_leaving_the_batch_in_the_queue(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory, stopper: Stopper
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))

    def export_interrupted_twice(items: Sequence[TelemetryItem]) -> ExportResult:
        stopper.on_signal(signal.SIGTERM, None)
        stopper.on_signal(signal.SIGINT, None)
        raise AssertionError("unreachable: the second signal raises")

    sink.export = export_interrupted_twice  # type: ignore[method-assign]

    with pytest.raises(StopNow):
        make_worker().work()

    [held] = queue.stored()
    assert held.dequeue_count == 1
    assert queue.receive(32, VISIBILITY_S) == []  # still invisible: nothing was released
    assert queue.calls.get("release", 0) == 0
    assert queue.dead_letters == []


def test_the_first_signal_requests_a_stop_and_the_second_raises() -> None:
    stopper = Stopper()

    stopper.on_signal(signal.SIGTERM, None)

    assert stopper.requested
    assert stopper.wait(10.0) is True  # a requested stop wakes any sleep at once
    with pytest.raises(StopNow):
        stopper.on_signal(signal.SIGINT, None)
    assert not issubclass(StopNow, Exception)
