"""A pack member the sink rejects is copied to poison once and never exported again."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta
from typing import Any

from backend.idempotency.ledger import EntryState
from backend.outcome import Outcome
from backend.processor import Processor
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from tests.backend.conftest import WorkerFactory
from tests.backend.fakes import CountingQueue, FakeTime, message_text, pack_text
from tests.backend.ledgered import JOB_KEY, LEASE_S, CountingLedger, job_text, wall_clock
from tools.payloads import RUN_ID, workflow_run_payload

RUN_KEY = f"workflow_run:{RUN_ID}:1:completed"


def second_step(item: TelemetryItem) -> bool:
    return item.name == "WorkflowStep" and item.properties.get("step_number") == "2"


def unzipped(text: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(text)))


def test_a_rejected_member_is_copied_at_once_and_not_exported_when_a_sibling_retries(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
    make_worker: WorkerFactory,
) -> None:
    # Given a run another worker holds, packed with a job one of whose steps the sink rejects
    ledger.claim([RUN_KEY], "another-worker", wall_clock(fake_time) + timedelta(days=1))
    sink.reject = second_step
    run = message_text(workflow_run_payload("completed"), delivery_id="d-run")
    queue.send(pack_text(job_text(), run))

    # When the pack comes back three times while the run stays busy
    worker = make_worker(processor)
    for _ in range(3):
        worker.work(burst=True)
        fake_time.now += LEASE_S

    # Then the job was exported once, its poison copy sent once, its key recorded done
    assert sink.names.count("WorkflowJob") == 1
    assert len(sink.exports) == 1
    [record] = [json.loads(text) for text in queue.dead_letters]
    assert record["member_index"] == 0
    assert record["reason"].startswith("the sink rejected 1 of 5 items")
    assert unzipped(record["content"])["delivery_id"] == "d-1"
    assert ledger.entries[JOB_KEY].state is EntryState.DONE
    assert len(queue) == 1

    # And when the run is finally done elsewhere, the message goes without another copy
    ledger.complete([RUN_KEY], "another-worker", wall_clock(fake_time))
    worker.work(burst=True)
    assert (len(queue), len(queue.dead_letters), len(sink.exports)) == (0, 1, 1)
    assert worker.counts[Outcome.POISON] == 1
