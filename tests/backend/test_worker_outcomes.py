"""Each message ends in exactly one outcome: done, poison or retry, settled on the queue."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from backend.outcome import Outcome
from backend.processor import Processor
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from common.envelope import Envelope
from tests.backend.conftest import MAX_DEQUEUE_COUNT, WorkerFactory
from tests.backend.fakes import CountingQueue, message_text
from tools.payloads import workflow_job_payload, workflow_run_payload


def poison_reasons(queue: CountingQueue) -> list[str]:
    return [str(json.loads(text)["reason"]) for text in queue.dead_letters]


def test_a_mapped_message_is_exported_then_deleted(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_job_payload("completed")))

    worker = make_worker()
    worker.work(burst=True)

    assert sink.names == ["WorkflowJob"] + ["WorkflowStep"] * 4
    assert len(queue) == 0
    assert queue.dead_letters == []
    assert worker.counts == {Outcome.DONE: 1}


def test_a_message_without_telemetry_is_done_and_says_so(
    queue: CountingQueue,
    sink: RecordingSink,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = workflow_run_payload("completed")
    payload["action"] = "edited"
    queue.send(message_text(payload, delivery_id="d-edited"))

    with caplog.at_level(logging.INFO, logger="backend"):
        make_worker().work(burst=True)

    assert sink.exports == []
    assert len(queue) == 0
    [line] = [r.getMessage() for r in caplog.records if "d-edited" in r.getMessage()]
    assert "done: no telemetry for workflow_run action 'edited'" in line


@pytest.mark.parametrize(
    ("content", "reason_start"),
    [
        ("not base64 at all", "EnvelopeError: not base64-encoded gzip"),
        (
            message_text(workflow_run_payload("completed", id=None)),
            "MappingError: ",
        ),
    ],
    ids=["undecodable", "missing-run-id"],
)
def test_a_message_that_cannot_be_mapped_is_poisoned_with_its_reason(
    queue: CountingQueue,
    sink: RecordingSink,
    make_worker: WorkerFactory,
    content: str,
    reason_start: str,
) -> None:
    queue.send(content)

    worker = make_worker()
    worker.work(burst=True)

    [reason] = poison_reasons(queue)
    assert reason.startswith(reason_start)
    assert json.loads(queue.dead_letters[0])["content"] == content
    assert len(queue) == 0
    assert sink.exports == []
    assert worker.counts == {Outcome.POISON: 1}


def test_a_message_received_too_often_is_poisoned_without_export(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    for _ in range(MAX_DEQUEUE_COUNT):
        [message] = queue.receive(1, visibility_timeout_s=10)
        queue.release(message)

    make_worker().work(burst=True)

    assert poison_reasons(queue) == [
        f"received {MAX_DEQUEUE_COUNT + 1} times, more than MAX_DEQUEUE_COUNT ({MAX_DEQUEUE_COUNT})"
    ]
    assert sink.exports == []


def test_items_the_sink_rejects_send_their_message_to_poison(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_job_payload("completed")))
    queue.send(message_text(workflow_run_payload("completed")))
    sink.reject = lambda item: (
        item.name == "WorkflowStep"
        and item.measurements["duration_seconds"] == pytest.approx(140.0)
    )

    make_worker().work(burst=True)

    assert poison_reasons(queue) == [
        "the sink rejected 1 of 5 items (first: WorkflowStep: sink told to reject)"
    ]
    assert sorted(sink.names) == ["WorkflowJob", "WorkflowRun"] + ["WorkflowStep"] * 3
    assert len(queue) == 0


def test_a_mapping_bug_leaves_the_message_for_a_later_try(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    def broken(envelope: Envelope, exported_at: datetime) -> list[TelemetryItem]:
        raise KeyError("bug")

    queue.send(message_text(workflow_run_payload("completed")))
    processor = Processor(sink, MAX_DEQUEUE_COUNT, mapper=broken)

    worker = make_worker(processor)
    worker.work(burst=True)

    assert worker.counts == {Outcome.RETRY: 1}
    [stored] = queue.stored()
    assert (stored.dequeue_count, queue.dead_letters) == (1, [])
    assert queue.calls.get("release", 0) == 0  # it waits out its visibility timeout
