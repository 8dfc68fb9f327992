"""Failures the worker loop must survive: odd receive errors, a bug while settling, extensions."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import Any

import pytest

from backend.outcome import Outcome
from backend.sinks.memory import RecordingSink
from common.envelope import compress
from common.queue import MessageGone, QueueMessage, QueueUnavailable
from tests.backend.conftest import VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text
from tools.payloads import workflow_job_payload, workflow_run_payload


def unzipped(text: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(text)))


def test_a_404_on_receive_is_backed_off_not_a_crash(
    queue: CountingQueue, sink: RecordingSink, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    failures = [MessageGone("404 ResourceNotFound")]
    real_receive = queue.receive

    def receive(max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        if failures:
            raise failures.pop()
        return real_receive(max_messages, visibility_timeout_s)

    queue.receive = receive  # type: ignore[method-assign]

    worker = make_worker()
    worker.work(burst=True)

    assert fake_time.sleeps == [0.5]
    assert (sink.names, len(queue), worker.counts) == (["WorkflowRun"], 0, {Outcome.DONE: 1})


def test_a_bug_while_settling_one_message_leaves_it_and_settles_the_rest(
    queue: CountingQueue,
    sink: RecordingSink,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken_id = queue.send(message_text(workflow_run_payload("completed"), delivery_id="d-1"))
    queue.send(message_text(workflow_job_payload("completed"), delivery_id="d-2"))
    real_delete = queue.delete

    def delete(message: QueueMessage) -> None:
        if message.id == broken_id:
            raise RuntimeError("a bug")
        real_delete(message)

    queue.delete = delete  # type: ignore[method-assign]

    with caplog.at_level(logging.ERROR, logger="backend"):
        worker = make_worker()
        worker.work(burst=True)

    assert [message.id for message in queue.stored()] == [broken_id]
    assert [r.getMessage() for r in caplog.records] == [
        f"message {broken_id}: settling (delete) failed unexpectedly; it reappears when its "
        "visibility ends"
    ]


def test_an_invalid_member_with_a_lone_surrogate_goes_to_poison_alone(
    queue: CountingQueue, sink: RecordingSink, make_worker: WorkerFactory
) -> None:
    good = unzipped(message_text(workflow_run_payload("completed")))
    bad = {"version": 1, "event": "workflow_job", "delivery_id": "x\ud800"}
    queue.send(compress(json.dumps({"version": 1, "envelopes": [good, bad]}).encode()))

    worker = make_worker()
    worker.work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert (record["member_index"], unzipped(record["content"])) == (1, bad)
    assert (sink.names, len(queue)) == (["WorkflowRun"], 0)
    assert worker.counts == {Outcome.DONE: 1, Outcome.POISON: 1}


def test_a_failed_extension_is_retried_soon_not_after_another_half_timeout(
    queue: CountingQueue, sink: RecordingSink, fake_time: FakeTime, make_worker: WorkerFactory
) -> None:
    queue.send(message_text(workflow_run_payload("completed")))
    sink.failing = True
    attempts: list[float] = []
    real_extend = queue.extend

    def extend(message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        attempts.append(fake_time.now - 1000.0)
        if len(attempts) == 1:
            raise QueueUnavailable("timeout")
        return real_extend(message, visibility_timeout_s)

    queue.extend = extend  # type: ignore[method-assign]

    def during_outage(_seconds: float) -> None:
        if fake_time.now >= 1000.0 + 2 * VISIBILITY_S:
            sink.failing = False

    fake_time.on_sleep = during_outage
    worker = make_worker()
    worker.work(burst=True)

    half = VISIBILITY_S / 2
    assert attempts[:3] == [half, half + half / 4, half + half / 4 + half]
    assert (sink.names, len(queue)) == (["WorkflowRun"], 0)
