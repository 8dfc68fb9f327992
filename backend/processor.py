"""Message handling between receive and settle: triage, then ledger claim, export, complete.

The worker holds a batch of `Job`s and calls `Processor.advance` until every job has a
verdict; each call only does what is still missing, so retrying after a sink or ledger
failure re-exports only the items that were not accepted yet. Each job's progress is its
`JobState` (`backend.parcel`), moved only by the job's named transitions. How the claims make
each event count once, and what they cost: docs/ledger.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from backend.idempotency import ClaimStatus, Ledger, LedgerSettings, LedgerUnavailable, NullLedger
from backend.idempotency import owner_id as new_owner_id
from backend.idempotency import purge_if_due as purge_ledger_if_due
from backend.idempotency.ledger import entity_of
from backend.outcome import Outcome, TransientError, Verdict
from backend.parcel import Job, JobState, Parcel
from backend.sinks.base import ExportResult, TelemetrySink
from backend.telemetry.mapping import at_export, has_telemetry
from backend.triage import KeyFunction, Mapper, Triage
from common.envelope import Envelope, utc_now
from common.queue import QueueError, QueueMessage

log = logging.getLogger(__name__)

# Puts the poison copy of one envelope of a pack on the poison queue (the worker's queue),
# with its reason and the ledger key completed after it (which a replay reopens).
PoisonSender = Callable[[Job, str, str], None]
# After a failed purge, try again this much later rather than after a whole interval.
PURGE_RETRY_S = 60.0


class LedgerDown(TransientError):
    """The ledger is unreachable: the batch is held exactly as through a sink outage."""


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
        self.sink = sink
        self.ledger: Ledger = ledger if ledger is not None else NullLedger()
        self.ledger_settings = ledger_settings or LedgerSettings()
        self.owner = owner or new_owner_id()
        self._triage = Triage(max_dequeue_count, mapper, key_of, now, is_mapped)
        self._now = now
        self._send_poison: PoisonSender | None = None
        self._next_purge_check: datetime | None = None

    def unpack(self, message: QueueMessage) -> Parcel:
        """Decode a message into one job per envelope and triage each (`backend.triage`)."""
        return self._triage.unpack(message)

    def advance(self, jobs: Sequence[Job], send_poison: PoisonSender | None = None) -> None:
        """Claim, export and complete what each undecided job still needs.

        Every call claims again the keys still to export: the first call is the batch's one
        claim; on a retry the claim is reentrant and renews the lease of what is held. With
        `send_poison`, a pack member the sink rejected is copied to poison at once and its
        key completed, so a sibling's retry does not export it again; its copy names the key,
        which a replay reopens.

        Raises:
            LedgerDown: the ledger is unreachable; undecided jobs keep their progress.
            TransientError: the sink failed; undecided jobs keep their progress.
        """
        self._send_poison = send_poison
        try:
            self._complete(_in(jobs, JobState.EXPORTED, JobState.COPIED))
            self._claim(_in(jobs, JobState.TRIAGED, JobState.CLAIMED))
        except LedgerUnavailable as error:
            self._follow(jobs)
            raise LedgerDown(str(error)) from error
        exporting = [job for job in _in(jobs, JobState.CLAIMED) if job.pending]
        result = self._export(exporting) if exporting else ExportResult()
        self._finish([job for job in exporting if not job.pending])
        try:
            self._complete(_in(jobs, JobState.EXPORTED, JobState.COPIED))
        except LedgerUnavailable as error:
            self._follow(jobs)
            raise LedgerDown(str(error)) from error
        self._follow(jobs)
        if not all(job.is_decided for job in jobs):
            raise TransientError(result.detail or "sink failed", result.retry_after_s)

    def release(self, jobs: Sequence[Job]) -> None:
        """Give up held jobs on a graceful stop: abandon the claims nothing was exported for.

        A job whose items were all accepted is finished: only the ledger's `complete` is
        missing, and releasing its message would export it again.
        """
        for job in _in(jobs, JobState.EXPORTED, JobState.COPIED):
            log.warning(
                "message %s: event %s was exported but the ledger could not record its "
                "completion before stopping; its telemetry may be duplicated",
                job.label,
                job.key,
            )
            job.decide(
                self._exported_verdict(
                    job, "; the ledger could not record the completion (possible duplicate)"
                )
            )
        untouched = [
            job for job in _in(jobs, JobState.CLAIMED) if len(job.pending) == len(job.items)
        ]
        self._abandon(untouched)
        for job in untouched:
            job.abandoned()

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
        primary.claimed()
        if self._triage.is_overdelivered(primary):
            # The dequeue rule applies only now: an event already exported was deleted above.
            self._abandon([primary])
            for job in same_event:
                job.decide(self._triage.overdelivered(job))
            return
        for job in same_event:
            if job is not primary:
                job.follow(primary)

    def _skip(self, job: Job, status: ClaimStatus) -> None:
        if status is ClaimStatus.DONE:
            reason = f"duplicate: event {job.key} was already exported (ledger), not exported again"
            job.decide(Verdict(Outcome.DONE, reason))
        elif status is ClaimStatus.SUPERSEDED:
            reason = (
                f"late lifecycle event: {entity_of(job.key)} has already completed (ledger), "
                "not exported"
            )
            job.decide(Verdict(Outcome.DONE, reason))
        else:
            lease_s = self.ledger_settings.lease_s
            reason = (
                f"another worker holds event {job.key} (ledger): hidden for {lease_s} s, "
                "until its claim can have expired"
            )
            job.wait_for_claim(lease_s, reason)

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
        self._abandon(rejected)
        for job in jobs:
            if job in rejected:
                job.decide(self._exported_verdict(job))
            else:
                job.exported()

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
            if job.state is JobState.EXPORTED and job.rejections and self._send_poison is not None:
                try:
                    self._send_poison(job, self._exported_verdict(job).reason, job.key)
                except QueueError as error:
                    # Fall back: poison it now, its copy is written when the message is deleted.
                    log.warning("message %s: poison copy failed: %s", job.label, error)
                    self._abandon([job])
                    job.decide(self._exported_verdict(job))
                    continue
                job.copied()
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
            job.decide(self._exported_verdict(job, note))

    def _abandon(self, jobs: list[Job]) -> None:
        """Give back the claims held, best effort: if the ledger is down, they lapse.

        Called before the jobs move on, while their state still says they hold the claim.
        """
        keys = [job.key for job in jobs if job.holds_claim]
        if not keys:
            return
        try:
            self.ledger.abandon(keys, self.owner)
        except LedgerUnavailable as error:
            log.warning("could not abandon %d ledger claims (they lapse): %s", len(keys), error)

    def _follow(self, jobs: Sequence[Job]) -> None:
        """Settle the copies of an event in this batch like the copy that carried it."""
        for job in _in(jobs, JobState.FOLLOWING):
            primary = job.primary
            if primary is None or primary.verdict is None:
                continue
            verdict = primary.verdict
            reason = f"same event as message {primary.label} in this batch: {verdict.reason}"
            if primary.state is JobState.WAITING:
                job.wait_for_claim(primary.hide_for_s, reason)
            else:
                job.decide(Verdict(verdict.outcome, reason))


def _in(jobs: Sequence[Job], *states: JobState) -> list[Job]:
    return [job for job in jobs if job.state in states]
