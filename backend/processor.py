"""Message handling between receive and settle: triage, ledger claim, export, ledger mark.

The worker holds a batch of `Job`s and calls `Processor.advance` until every job has a
verdict; each call only does what is still missing, so retrying after a sink or ledger
failure re-exports only the items that were not accepted yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from backend.ledger import Ledger, NoLedger
from backend.outcome import Outcome, TransientError, Verdict
from backend.sinks.base import ExportResult, TelemetrySink
from backend.telemetry.item import TelemetryItem
from backend.telemetry.mapping import MappingError
from common.envelope import Envelope, EnvelopeError, decode, utc_now
from common.queue import QueueMessage

log = logging.getLogger(__name__)

Mapper = Callable[[Envelope, datetime], list[TelemetryItem]]
KeyFunction = Callable[[Envelope], str]


@dataclass
class Job:
    """One message in hand and how far its handling got."""

    message: QueueMessage
    envelope: Envelope | None = None
    key: str = ""
    items: list[TelemetryItem] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    claimed: bool = False
    verdict: Verdict | None = None
    settled: bool = False

    @property
    def delivery_id(self) -> str:
        """The GitHub delivery id once the envelope decoded, else empty."""
        return self.envelope.delivery_id if self.envelope is not None else ""


def default_mapping() -> tuple[Mapper, KeyFunction]:
    """The project's telemetry mapping and event key, imported when a processor is built."""
    from backend.telemetry.keys import event_key
    from backend.telemetry.mapping import to_telemetry

    return to_telemetry, event_key


class Processor:
    """Turns messages into telemetry and decides their outcome; never raises but TransientError."""

    def __init__(
        self,
        sink: TelemetrySink,
        max_dequeue_count: int,
        ledger: Ledger | None = None,
        mapper: Mapper | None = None,
        key_of: KeyFunction | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        if mapper is None or key_of is None:
            default_mapper, default_key = default_mapping()
            mapper = mapper or default_mapper
            key_of = key_of or default_key
        self.sink = sink
        self.ledger: Ledger = ledger if ledger is not None else NoLedger()
        self.max_dequeue_count = max_dequeue_count
        self._mapper = mapper
        self._key_of = key_of
        self._now = now

    def triage(self, job: Job) -> None:
        """Decode and map the message; decide it now if it is poison or has no telemetry."""
        message = job.message
        if message.dequeue_count > self.max_dequeue_count:
            job.verdict = Verdict(
                Outcome.POISON,
                f"received {message.dequeue_count} times, more than MAX_DEQUEUE_COUNT "
                f"({self.max_dequeue_count})",
            )
            return
        try:
            job.envelope = decode(message.content)
            job.items = list(self._mapper(job.envelope, self._now()))
            job.key = self._key_of(job.envelope)
        except (EnvelopeError, MappingError) as error:
            job.verdict = Verdict(Outcome.POISON, f"{type(error).__name__}: {error}")
            return
        except Exception as error:
            # A bug, not bad input: leave the message; its dequeue count ends it in poison.
            log.exception("message %s: mapping failed unexpectedly", message.id)
            job.verdict = Verdict(Outcome.RETRY, f"mapping raised {type(error).__name__}")
            return
        if not job.items:
            envelope = job.envelope
            job.verdict = Verdict(
                Outcome.DONE, f"no telemetry for {envelope.event} action {envelope.action!r}"
            )
            return
        job.pending = list(range(len(job.items)))

    def advance(self, jobs: Sequence[Job]) -> None:
        """Claim, export and mark what each undecided job still needs.

        Raises:
            TransientError: the ledger or the sink failed; undecided jobs keep their progress.
        """
        self._claim([job for job in jobs if job.verdict is None and not job.claimed])
        exporting = [job for job in jobs if job.verdict is None and job.pending]
        result = self._export(exporting) if exporting else ExportResult()
        self._finish([job for job in jobs if job.verdict is None and not job.pending])
        if any(job.verdict is None for job in jobs):
            raise TransientError(result.detail or "sink failed", result.retry_after_s)

    def _claim(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        already_done = self.ledger.claim([job.key for job in jobs])
        for job in jobs:
            job.claimed = True
            if job.key in already_done:
                job.pending.clear()
                job.verdict = Verdict(Outcome.DONE, "already exported (ledger)")

    def _export(self, jobs: list[Job]) -> ExportResult:
        owners = [(job, index) for job in jobs for index in job.pending]
        items = [job.items[index] for job, index in owners]
        try:
            result = self.sink.export(items)
        except Exception as error:  # a sink must not raise; treat a bug like an outage
            log.exception("sink raised on a batch of %d items", len(items))
            result = ExportResult.all_retryable(len(items), f"sink raised {type(error).__name__}")
        settled: dict[int, str | None] = {index: None for index in result.accepted}
        settled.update({rejection.index: rejection.reason for rejection in result.rejected})
        for position, (job, index) in enumerate(owners):
            if position not in settled or position in result.retryable:
                continue
            job.pending.remove(index)
            reason = settled[position]
            if reason is not None:
                item = job.items[index]
                log.warning("message %s: item %s rejected: %s", job.message.id, item.name, reason)
                job.rejections.append(f"{item.name}: {reason}")
        return result

    def _finish(self, jobs: list[Job]) -> None:
        accepted = [job for job in jobs if not job.rejections]
        for job in jobs:
            if job.rejections:
                job.verdict = Verdict(
                    Outcome.POISON,
                    f"the sink rejected {len(job.rejections)} of {len(job.items)} items "
                    f"(first: {job.rejections[0]})",
                )
        if accepted:
            self.ledger.mark_done([job.key for job in accepted])
        for job in accepted:
            job.verdict = Verdict(Outcome.DONE, f"{len(job.items)} item(s) accepted by the sink")
