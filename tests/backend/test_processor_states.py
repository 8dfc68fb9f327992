"""Where the processor leaves each job: the states of a batch through outages, copies and stops."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from backend.outcome import Outcome, TransientError, Verdict
from backend.parcel import Job, JobState, Parcel
from backend.processor import LedgerDown, Processor
from backend.sinks.base import ExportResult
from backend.sinks.memory import RecordingSink
from backend.telemetry.item import TelemetryItem
from tests.backend.conftest import VISIBILITY_S
from tests.backend.fakes import CountingQueue, FakeTime, message_text, pack_text
from tests.backend.ledgered import JOB_KEY, LEASE_S, CountingLedger, job_text, wall_clock
from tools.payloads import RUN_ID, workflow_run_payload

RUN_KEY = f"workflow_run:{RUN_ID}:1:completed"


class LedgerFailingAfterExport(RecordingSink):
    """A sink after whose first accepted export the ledger goes down."""

    def __init__(self, ledger: CountingLedger) -> None:
        super().__init__()
        self.ledger = ledger

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        result = super().export(items)
        self.ledger.unavailable = True
        return result


def unpacked(processor: Processor, queue: CountingQueue, *texts: str) -> list[Parcel]:
    for text in texts:
        queue.send(text)
    return [processor.unpack(message) for message in queue.receive(32, VISIBILITY_S)]


def states(parcels: Sequence[Parcel]) -> list[JobState]:
    return [job.state for parcel in parcels for job in parcel.jobs]


def jobs_of(parcels: Sequence[Parcel]) -> list[Job]:
    return [job for parcel in parcels for job in parcel.jobs]


def test_a_sink_outage_leaves_the_job_claimed_with_every_item_pending(
    queue: CountingQueue, sink: RecordingSink, processor: Processor
) -> None:
    parcels = unpacked(processor, queue, job_text())
    [job] = jobs_of(parcels)
    assert (job.state, job.key, job.pending) == (JobState.TRIAGED, JOB_KEY, [0, 1, 2, 3, 4])
    sink.failing = True

    with pytest.raises(TransientError):
        processor.advance([job])
    assert (job.state, job.pending) == (JobState.CLAIMED, [0, 1, 2, 3, 4])

    sink.failing = False
    processor.advance([job])
    assert (job.state, job.verdict) == (
        JobState.DECIDED,
        Verdict(Outcome.DONE, "5 item(s) accepted by the sink"),
    )


def test_a_ledger_down_at_complete_leaves_the_job_exported_until_it_answers(
    queue: CountingQueue, ledger: CountingLedger, processor: Processor
) -> None:
    processor.sink = LedgerFailingAfterExport(ledger)
    [job] = jobs_of(unpacked(processor, queue, job_text()))

    with pytest.raises(LedgerDown):
        processor.advance([job])
    assert (job.state, job.pending, job.holds_claim) == (JobState.EXPORTED, [], True)

    ledger.unavailable = False
    processor.advance([job])
    assert job.state is JobState.DECIDED
    assert ledger.methods() == ["claim", "complete", "complete"]


def test_copies_of_one_event_in_a_batch_follow_the_least_delivered_one(
    queue: CountingQueue, sink: RecordingSink, processor: Processor
) -> None:
    parcels = unpacked(processor, queue, job_text(delivery_id="d-1"), job_text(delivery_id="d-2"))
    primary, copy = jobs_of(parcels)
    sink.failing = True

    with pytest.raises(TransientError):
        processor.advance([primary, copy])
    assert (primary.state, copy.state, copy.primary) == (
        JobState.CLAIMED,
        JobState.FOLLOWING,
        primary,
    )

    sink.failing = False
    processor.advance([primary, copy])
    assert states(parcels) == [JobState.DECIDED, JobState.DECIDED]
    assert copy.verdict is not None and copy.verdict.reason.startswith(
        f"same event as message {primary.label} in this batch: "
    )


def test_an_event_another_worker_holds_waits_for_the_lease_and_its_copies_wait_too(
    queue: CountingQueue, ledger: CountingLedger, processor: Processor, fake_time: FakeTime
) -> None:
    ledger.claim([JOB_KEY], "another-worker", wall_clock(fake_time))
    parcels = unpacked(processor, queue, job_text(delivery_id="d-1"), job_text(delivery_id="d-2"))

    processor.advance(jobs_of(parcels))

    assert states(parcels) == [JobState.WAITING, JobState.WAITING]
    assert [job.hide_for_s for job in jobs_of(parcels)] == [LEASE_S, LEASE_S]
    assert {job.outcome for job in jobs_of(parcels)} == {Outcome.RETRY}


def test_a_rejected_pack_member_is_dead_lettered_once_its_copy_is_sent(
    queue: CountingQueue,
    sink: RecordingSink,
    ledger: CountingLedger,
    processor: Processor,
    fake_time: FakeTime,
) -> None:
    # Given a pack of a job the sink rejects a step of, and a run another worker holds
    ledger.claim([RUN_KEY], "another-worker", wall_clock(fake_time) + timedelta(days=1))
    sink.reject = lambda item: item.name == "WorkflowStep"
    run = message_text(workflow_run_payload("completed"), delivery_id="d-run")
    parcels = unpacked(processor, queue, pack_text(job_text(), run))
    copies: list[str] = []

    # When the batch advances with a poison sender
    processor.advance(jobs_of(parcels), lambda job, _reason, _key: copies.append(job.label))

    # Then the job's copy went at once and it is dead-lettered; the run waits
    [parcel] = parcels
    assert states(parcels) == [JobState.DEAD_LETTERED, JobState.WAITING]
    assert copies == [f"{parcel.message.id} [1/2]"]
    assert parcel.jobs[0].outcome is Outcome.POISON


def test_stopping_gives_back_untouched_claims_and_decides_what_was_exported(
    queue: CountingQueue, ledger: CountingLedger, processor: Processor
) -> None:
    # Given one job held through a sink outage, and one exported whose completion failed
    processor.sink = LedgerFailingAfterExport(ledger)
    [exported] = jobs_of(unpacked(processor, queue, job_text(delivery_id="d-1")))
    with pytest.raises(LedgerDown):
        processor.advance([exported])
    ledger.unavailable = False
    failing = RecordingSink()
    failing.failing = True
    processor.sink = failing
    run = message_text(workflow_run_payload("completed"), delivery_id="d-run")
    [untouched] = jobs_of(unpacked(processor, queue, run))
    with pytest.raises(TransientError):
        processor.advance([untouched])

    # When the worker stops holding them
    processor.release([exported, untouched])

    # Then the exported one is decided, the other back to TRIAGED with its claim given back
    assert (exported.state, untouched.state) == (JobState.DECIDED, JobState.TRIAGED)
    assert exported.verdict is not None and exported.verdict.reason.endswith(
        "; the ledger could not record the completion (possible duplicate)"
    )
    assert ledger.calls[-1][:2] == ("abandon", [RUN_KEY])
