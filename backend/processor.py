"""Message handling between receive and settle: triage, ledger claim, export, ledger complete.

The worker holds a batch of `Job`s and calls `Processor.advance` until every job has a
verdict; each call only does what is still missing, so retrying after a sink or ledger
failure re-exports only the items that were not accepted yet. See docs/ledger.md for the
order of the rules and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from backend.idempotency import ClaimStatus, Ledger, LedgerSettings, LedgerUnavailable, NullLedger
from backend.idempotency import owner_id as new_owner_id
from backend.idempotency import purge_if_due as purge_ledger_if_due
from backend.idempotency.ledger import check_key, entity_of
from backend.outcome import Outcome, TransientError, Verdict
from backend.parcel import Job, Parcel
from backend.sinks.base import ExportResult, TelemetrySink
from backend.telemetry.item import TelemetryItem
from backend.telemetry.mapping import MappingError, at_export, has_telemetry
from common.envelope import Envelope, EnvelopeError, decode_members, utc_now
from common.queue import QueueError, QueueMessage

log = logging.getLogger(__name__)

Mapper = Callable[[Envelope, datetime], list[TelemetryItem]]
KeyFunction = Callable[[Envelope], str]
# Puts the poison copy of one envelope of a pack on the poison queue (the worker's queue).
PoisonSender = Callable[[Job, str], None]
# After a failed purge, try again this much later rather than after a whole interval.
PURGE_RETRY_S = 60.0


class LedgerDown(TransientError):
    """The ledger is unreachable: the batch is held exactly as through a sink outage."""


def default_mapping() -> tuple[Mapper, KeyFunction]:
    """The project's telemetry mapping and event key, imported when a processor is built."""
    from backend.telemetry.keys import event_key
    from backend.telemetry.mapping import to_telemetry

    return to_telemetry, event_key


class Processor:
    """Turns messages into telemetry once per event and decides each message's outcome.

    Never raises but TransientError (LedgerDown for the ledger). `owner` names this worker's
    claims; one per process (`backend.idempotency.owner_id`).
    """

    def __init__(
        self,
        sink: TelemetrySink,
        max_dequeue_count: int,
        ledger: Ledger | None = None,
        ledger_settings: LedgerSettings | None = None,
        owner: str | None = None,
        mapper: Mapper | None = None,
        key_of: KeyFunction | None = None,
        now: Callable[[], datetime] = utc_now,
        is_mapped: Callable[[Envelope], bool] = has_telemetry,
    ) -> None:
        if mapper is None or key_of is None:
            default_mapper, default_key = default_mapping()
            mapper = mapper or default_mapper
            key_of = key_of or default_key
        self.sink = sink
        self.ledger: Ledger = ledger if ledger is not None else NullLedger()
        self.ledger_settings = ledger_settings or LedgerSettings()
        self.owner = owner or new_owner_id()
        self.max_dequeue_count = max_dequeue_count
        self._mapper = mapper
        self._key_of = key_of
        self._now = now
        self._is_mapped = is_mapped
        self._send_poison: PoisonSender | None = None
        self._next_purge_check: datetime | None = None

    def unpack(self, message: QueueMessage) -> Parcel:
        """Decode a message into one job per envelope and triage each.

        An unreadable message is one job, poisoned whole. An invalid member of a pack is a
        job poisoned alone; the pack's other members go on.
        """
        parcel = Parcel(message)
        overdelivered = message.dequeue_count > self.max_dequeue_count
        try:
            members = decode_members(message.content)
        except EnvelopeError as error:
            parcel.jobs = [Job(parcel, verdict=Verdict(Outcome.POISON, _named(error)))]
            return parcel
        except Exception as error:
            job = Job(parcel, overdelivered=overdelivered)
            parcel.jobs = [job]
            job.verdict = self._unexpected(job, error)
            return parcel
        for member in members:
            job = Job(parcel, member if member.count > 1 else None, member.envelope)
            parcel.jobs.append(job)
            job.overdelivered = overdelivered
            if member.error is not None:
                job.verdict = Verdict(Outcome.POISON, _named(member.error))
            else:
                self.triage(job)
        return parcel

    def triage(self, job: Job) -> None:
        """Compute the decoded envelope's key; map it unless its message was received too often.

        A message over MAX_DEQUEUE_COUNT is not mapped (mapping may be what keeps failing);
        it is claimed like any other so a copy of an exported event is deleted, not poisoned,
        unless its action maps to no telemetry at all (the mapping's action table says so).
        """
        assert job.envelope is not None
        try:
            job.key = check_key(self._key_of(job.envelope))
            if not job.overdelivered:
                job.items = list(self._mapper(job.envelope, self._now()))
            elif not self._is_mapped(job.envelope):
                job.verdict = _no_telemetry(job.envelope)
                return
        except (EnvelopeError, MappingError, ValueError) as error:
            job.verdict = Verdict(Outcome.POISON, _named(error))
            return
        except Exception as error:
            job.verdict = self._unexpected(job, error)
            return
        if not job.items and not job.overdelivered:
            job.verdict = _no_telemetry(job.envelope)
            return
        job.pending = list(range(len(job.items)))

    def advance(self, jobs: Sequence[Job], send_poison: PoisonSender | None = None) -> None:
        """Claim, export and complete what each undecided job still needs.

        Every call claims again the keys still to export: the first call is the batch's one
        claim; on a retry the claim is reentrant and renews the lease of what is held. With
        `send_poison`, a pack member the sink rejected is copied to poison at once and its
        key completed, so a sibling's retry does not export it again.

        Raises:
            LedgerDown: the ledger is unreachable; undecided jobs keep their progress.
            TransientError: the sink failed; undecided jobs keep their progress.
        """
        self._send_poison = send_poison
        try:
            self._complete([job for job in jobs if job.verdict is None and job.exported])
            self._claim([job for job in jobs if self._needs_claim(job)])
        except LedgerUnavailable as error:
            self._follow(jobs)
            raise LedgerDown(str(error)) from error
        exporting = [job for job in jobs if job.verdict is None and job.claimed and job.pending]
        result = self._export(exporting) if exporting else ExportResult()
        self._finish([job for job in exporting if not job.pending])
        try:
            self._complete([job for job in jobs if job.verdict is None and job.exported])
        except LedgerUnavailable as error:
            self._follow(jobs)
            raise LedgerDown(str(error)) from error
        self._follow(jobs)
        if any(job.verdict is None for job in jobs):
            raise TransientError(result.detail or "sink failed", result.retry_after_s)

    def release(self, jobs: Sequence[Job]) -> None:
        """Give up held jobs on a graceful stop: abandon the claims nothing was exported for.

        A job whose items were all accepted is finished: only the ledger's `complete` is
        missing, and releasing its message would export it again.
        """
        for job in jobs:
            if job.verdict is None and job.exported:
                log.warning(
                    "message %s: event %s was exported but the ledger could not record its "
                    "completion before stopping; its telemetry may be duplicated",
                    job.label,
                    job.key,
                )
                job.claimed = False
                job.verdict = self._exported_verdict(
                    job, "; the ledger could not record the completion (possible duplicate)"
                )
        untouched = [
            job
            for job in jobs
            if job.verdict is None and job.claimed and len(job.pending) == len(job.items)
        ]
        self._abandon(untouched)

    def purge_if_due(self) -> None:
        """Purge the ledger if this worker wins the turn; checked at most once per interval."""
        now = self._now()
        if self._next_purge_check is not None and now < self._next_purge_check:
            return
        interval_s = float(self.ledger_settings.purge_interval_s)
        self._next_purge_check = now + timedelta(seconds=interval_s)
        try:
            purge_ledger_if_due(self.ledger, self.ledger_settings, now)
        except LedgerUnavailable as error:
            log.warning("ledger purge skipped, ledger unavailable: %s", error)
            self._next_purge_check = now + timedelta(seconds=min(PURGE_RETRY_S, interval_s))

    def _needs_claim(self, job: Job) -> bool:
        return job.verdict is None and job.primary is None and not job.exported

    def _claim(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        statuses = self.ledger.claim([job.key for job in jobs], self.owner, self._now())
        copies: dict[str, list[Job]] = {}
        for job in jobs:
            copies.setdefault(job.key, []).append(job)
        for key, same_event in copies.items():
            status = statuses[key]
            if status is ClaimStatus.CLAIMED:
                self._hold(same_event)
            else:
                for job in same_event:
                    self._skip(job, status)

    def _hold(self, same_event: list[Job]) -> None:
        """Keep the claim for the least-delivered copy; the others follow its verdict."""
        primary = min(same_event, key=lambda job: job.message.dequeue_count)
        primary.claimed = True
        for job in same_event:
            if job is not primary:
                job.primary, job.pending, job.claimed = primary, [], False
        if primary.overdelivered:
            # The dequeue rule applies only now: an event already exported was deleted above.
            for job in same_event:
                job.primary, job.verdict = None, self._overdelivered(job)
            self._abandon([primary])

    def _skip(self, job: Job, status: ClaimStatus) -> None:
        job.pending.clear()
        job.claimed = False
        if status is ClaimStatus.DONE:
            reason = f"duplicate: event {job.key} was already exported (ledger), not exported again"
            job.verdict = Verdict(Outcome.DONE, reason)
        elif status is ClaimStatus.SUPERSEDED:
            reason = (
                f"late lifecycle event: {entity_of(job.key)} has already completed (ledger), "
                "not exported"
            )
            job.verdict = Verdict(Outcome.DONE, reason)
        else:
            lease_s = self.ledger_settings.lease_s
            job.hide_for_s = lease_s
            reason = (
                f"another worker holds event {job.key} (ledger): hidden for {lease_s} s, "
                "until its claim can have expired"
            )
            job.verdict = Verdict(Outcome.RETRY, reason)

    def _unexpected(self, job: Job, error: Exception) -> Verdict:
        if job.overdelivered:
            return self._overdelivered(job)
        # A bug, not bad input: leave the message; its dequeue count ends it in poison.
        log.exception("message %s: mapping failed unexpectedly", job.label)
        return Verdict(Outcome.RETRY, f"mapping raised {type(error).__name__}")

    def _overdelivered(self, job: Job) -> Verdict:
        return Verdict(
            Outcome.POISON,
            f"received {job.message.dequeue_count} times, more than MAX_DEQUEUE_COUNT "
            f"({self.max_dequeue_count})",
        )

    def _export(self, jobs: list[Job]) -> ExportResult:
        owners = [(job, index) for job in jobs for index in job.pending]
        now = self._now()
        for job, index in owners:
            if job.envelope is not None:
                job.items[index] = at_export(job.items[index], job.envelope, now)
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
                log.warning("message %s: item %s rejected: %s", job.label, item.name, reason)
                job.rejections.append(f"{item.name}: {reason}")
        return result

    def _finish(self, jobs: list[Job]) -> None:
        """Jobs with nothing left to send: due for complete, or poison with the claim released.

        A rejected pack member is completed too (after its poison copy), so the siblings'
        retries do not export it again; a rejected single envelope is dead-lettered at once.
        """
        rejected = [job for job in jobs if job.rejections and not self._copies_now(job)]
        for job in rejected:
            job.verdict = self._exported_verdict(job)
        self._abandon(rejected)
        for job in jobs:
            job.exported = job not in rejected

    def _copies_now(self, job: Job) -> bool:
        return job.member is not None and self._send_poison is not None

    def _exported_verdict(self, job: Job, note: str = "") -> Verdict:
        if job.rejections:
            return Verdict(
                Outcome.POISON,
                f"the sink rejected {len(job.rejections)} of {len(job.items)} items "
                f"(first: {job.rejections[0]}){note}",
            )
        return Verdict(Outcome.DONE, f"{len(job.items)} item(s) accepted by the sink{note}")

    def _copy_to_poison(self, jobs: list[Job]) -> list[Job]:
        """Send the poison copies due before `complete`; the jobs that may be completed now."""
        ready: list[Job] = []
        for job in jobs:
            if job.rejections and not job.poison_sent and self._send_poison is not None:
                try:
                    self._send_poison(job, self._exported_verdict(job).reason)
                except QueueError as error:
                    # Fall back: poison it now, its copy is written when the message is deleted.
                    log.warning("message %s: poison copy failed: %s", job.label, error)
                    job.verdict = self._exported_verdict(job)
                    self._abandon([job])
                    continue
                job.poison_sent = True
            ready.append(job)
        return ready

    def _complete(self, jobs: list[Job]) -> None:
        jobs = self._copy_to_poison(jobs)
        if not jobs:
            return
        refused = self.ledger.complete([job.key for job in jobs], self.owner, self._now())
        for job in jobs:
            note = ""
            if job.key in refused:
                log.warning(
                    "message %s: event %s was taken over by another worker after this one's "
                    "claim expired; its telemetry may be duplicated",
                    job.label,
                    job.key,
                )
                note = "; the ledger refused the completion (possible duplicate)"
            job.claimed = False
            job.verdict = self._exported_verdict(job, note)

    def _abandon(self, jobs: list[Job]) -> None:
        """Release claims best effort: if the ledger is down, they lapse with their lease."""
        keys = [job.key for job in jobs if job.claimed]
        for job in jobs:
            job.claimed = False
        if not keys:
            return
        try:
            self.ledger.abandon(keys, self.owner)
        except LedgerUnavailable as error:
            log.warning("could not abandon %d ledger claims (they lapse): %s", len(keys), error)

    def _follow(self, jobs: Sequence[Job]) -> None:
        """Settle the copies of an event in this batch like the copy that carried it."""
        for job in jobs:
            primary = job.primary
            if job.verdict is not None or primary is None or primary.verdict is None:
                continue
            job.hide_for_s = primary.hide_for_s
            job.verdict = Verdict(
                primary.verdict.outcome,
                f"same event as message {primary.label} in this batch: {primary.verdict.reason}",
            )


def _no_telemetry(envelope: Envelope) -> Verdict:
    return Verdict(Outcome.DONE, f"no telemetry for {envelope.event} action {envelope.action!r}")


def _named(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
