"""Messages carrying several envelopes: keyed, claimed and exported per envelope, settled once."""

from __future__ import annotations

import base64
import gzip
import json
import logging
from typing import Any

import pytest

from backend.outcome import Outcome
from backend.processor import Processor
from backend.sinks.memory import RecordingSink
from common.envelope import compress, to_json_bytes
from tests.backend.conftest import VISIBILITY_S, WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text, pack_text
from tests.backend.ledgered import JOB_ITEMS, JOB_KEY, LEASE_S, CountingLedger, job_text, wall_clock
from tools.payloads import RUN_ID, envelope_for, workflow_job_payload, workflow_run_payload

RUN_KEY = f"workflow_run:{RUN_ID}:1:completed"


def run_text() -> str:
    return message_text(workflow_run_payload("completed"), delivery_id="d-run")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "backend.settler"]


def unzipped(text: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(text)))


def test_every_member_exported_with_one_claim_then_the_message_deleted(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = queue.send(pack_text(job_text(), run_text()))

    with caplog.at_level(logging.INFO, logger="backend"):
        worker = make_worker(processor)
        worker.work(burst=True)

    assert sorted(sink.names) == sorted(JOB_ITEMS + ["WorkflowRun"])
    assert ledger.methods() == ["claim", "complete"]
    assert sorted(ledger.calls[0][1]) == sorted([JOB_KEY, RUN_KEY])
    assert (worker.counts, len(queue), queue.dead_letters) == ({Outcome.DONE: 2}, 0, [])
    assert lines(caplog) == [
        f"message {message_id} [1/2] (delivery d-1): done: 5 item(s) accepted by the sink",
        f"message {message_id} [2/2] (delivery d-run): done: 1 item(s) accepted by the sink",
    ]


BAD_ENVELOPE = {"version": 1, "event": "workflow_job"}
UNMAPPABLE = json.loads(
    to_json_bytes(envelope_for(workflow_job_payload("completed", id=None), delivery_id="d-bad"))
)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (BAD_ENVELOPE, "EnvelopeError: invalid envelope: "),
        (UNMAPPABLE, "MappingError: "),
    ],
    ids=["invalid-envelope", "unmappable"],
)
def test_an_invalid_member_alone_goes_to_poison_and_the_others_are_exported(
    queue: CountingQueue,
    sink: RecordingSink,
    processor: Processor,
    make_worker: WorkerFactory,
    bad: dict[str, Any],
    reason: str,
) -> None:
    bad_text = compress(json.dumps(bad).encode("utf-8"))
    message_id = queue.send(pack_text(job_text(), bad_text, run_text()))

    worker = make_worker(processor)
    worker.work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert record["reason"].startswith(reason)
    assert (record["message_id"], record["member_index"], record["member_count"]) == (
        message_id,
        1,
        3,
    )
    assert unzipped(record["content"]) == bad  # that envelope alone, as it was sent
    assert sorted(sink.names) == sorted(JOB_ITEMS + ["WorkflowRun"])
    assert (worker.counts, len(queue)) == ({Outcome.DONE: 2, Outcome.POISON: 1}, 0)


def test_a_busy_member_hides_the_message_and_the_done_one_is_skipped_next_time(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    # Given another worker holding the job's claim
    ledger.claim([JOB_KEY], "a-dead-worker", wall_clock(fake_time))
    queue.send(pack_text(job_text(), run_text()))

    # When the pack arrives: the run is exported, the job is busy, the message is kept hidden
    worker = make_worker(processor)
    worker.work(burst=True)
    assert (sink.names, worker.counts) == (["WorkflowRun"], {Outcome.DONE: 1, Outcome.RETRY: 1})
    assert (queue.calls["extend"], len(queue)) == (1, 1)
    fake_time.now += LEASE_S - 1
    assert queue.receive(32, VISIBILITY_S) == []

    # Then once the claim can have expired, the job is exported and the run is a duplicate
    fake_time.now += 1
    worker.work(burst=True)
    assert sorted(sink.names) == sorted(["WorkflowRun"] + JOB_ITEMS)
    assert (len(queue), queue.dead_letters) == (0, [])


def test_a_member_already_exported_is_skipped_and_the_rest_exported(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger.complete([JOB_KEY], "an-earlier-worker", wall_clock(fake_time))
    message_id = queue.send(pack_text(job_text(), run_text()))

    with caplog.at_level(logging.INFO, logger="backend"):
        make_worker(processor).work(burst=True)

    assert (sink.names, len(queue)) == (["WorkflowRun"], 0)
    assert (
        f"message {message_id} [1/2] (delivery d-1): done: duplicate: event {JOB_KEY} was "
        "already exported (ledger), not exported again"
    ) in lines(caplog)


def test_an_export_failure_holds_the_whole_pack_and_sends_each_item_once(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    queue.send(pack_text(job_text(), run_text()))
    sink.fail_next(2)

    worker = make_worker(processor)
    worker.work(burst=True)

    assert len(sink.exports) == 3  # two failures, then the one accepted export
    assert sorted(sink.names) == sorted(JOB_ITEMS + ["WorkflowRun"])
    assert queue.calls["receive"] == 2  # held, not received again while failing
    assert fake_time.sleeps == [0.5, 1.0]
    assert (worker.counts, len(queue), queue.dead_letters) == ({Outcome.DONE: 2}, 0, [])


def test_a_pack_received_too_often_poisons_each_claimed_member_alone(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    ledger.complete([RUN_KEY], "an-earlier-worker", wall_clock(fake_time))
    queue.send(pack_text(job_text(), run_text()))
    for _ in range(5):
        [message] = queue.receive(1, visibility_timeout_s=VISIBILITY_S)
        queue.release(message)

    make_worker(processor).work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert (record["member_index"], record["reason"]) == (
        0,
        "received 6 times, more than MAX_DEQUEUE_COUNT (5)",
    )
    assert unzipped(record["content"])["delivery_id"] == "d-1"
    assert (sink.exports, len(queue)) == ([], 0)


def test_an_overdelivered_member_without_telemetry_is_done_not_poisoned(
    queue: CountingQueue,
    sink: RecordingSink,
    processor: Processor,
    make_worker: WorkerFactory,
) -> None:
    ignored = workflow_run_payload("completed")
    ignored["action"] = "pre_requested"
    queue.send(pack_text(job_text(), message_text(ignored, delivery_id="d-ignored")))
    for _ in range(5):
        [message] = queue.receive(1, visibility_timeout_s=VISIBILITY_S)
        queue.release(message)

    worker = make_worker(processor)
    worker.work(burst=True)

    [record] = [json.loads(text) for text in queue.dead_letters]
    assert record["member_index"] == 0
    assert (sink.exports, len(queue)) == ([], 0)
    assert worker.counts == {Outcome.POISON: 1, Outcome.DONE: 1}
