"""Settling a batch's messages side by side: each is deleted, dead-lettered, hidden or left once."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence

from backend.outcome import Outcome, Verdict
from backend.parcel import Action, Job, Parcel, Settlement, settlement
from backend.threadpool import Running, ThreadPool
from common.envelope import utc_now
from common.queue import MessageGone, QueueConsumer, QueueError, poison_record

log = logging.getLogger(__name__)

UNDECIDED = Verdict(Outcome.RETRY, "not decided before stopping")


class Settler:
    """Applies each message's settlement once, on a few threads, and counts the outcomes.

    The settles of one batch run on while the worker receives and decides the next
    (`start`); `finish` waits for them. Only the worker's own thread calls the methods.
    """

    def __init__(self, queue: QueueConsumer, threads: int) -> None:
        self.queue = queue
        self.counts: Counter[Outcome] = Counter()
        self._counts_lock = threading.Lock()  # settles run on the pool's threads
        self._pool = ThreadPool(threads, "settle")
        # The last batch's settles, still running while the next batch is received.
        self._settling: tuple[list[Parcel], Running] | None = None

    def settle_all(self, parcels: Sequence[Parcel], release: bool = False) -> None:
        """Settle the messages side by side; all of them are settled when this returns."""
        self.start(parcels, release)
        self.finish()

    def start(self, parcels: Sequence[Parcel], release: bool = False) -> None:
        """Start settling the messages side by side, once the batch before is all settled."""
        self.finish()
        pending = [parcel for parcel in parcels if not parcel.settled]

        def settle_one(parcel: Parcel) -> None:
            self.settle(parcel, release=release)

        self._settling = (pending, self._pool.start_all(settle_one, pending))

    def drop(self) -> None:
        """Cancel the settles not started yet and wait for those running."""
        if self._settling is not None:
            _pending, running = self._settling
            self._settling = None
            running.cancel_and_wait()

    def finish(self) -> None:
        """Wait until the messages being settled are all settled."""
        if self._settling is None:
            return
        pending, running = self._settling
        self._settling = None
        for parcel, error in zip(pending, running.wait(), strict=True):
            if error is not None:
                # settle catches the errors of the queue calls; this is a bug in settle itself,
                # logged here so that it is neither lost on a thread nor the end of the loop.
                log.error(
                    "message %s: settling failed unexpectedly",
                    parcel.message.id,
                    exc_info=error,
                    extra={"message_id": parcel.message.id},
                )

    def close(self) -> None:
        """Stop the settle threads, after any settle still running."""
        self._pool.close()

    def settle(self, parcel: Parcel, touch_queue: bool = True, release: bool = False) -> None:
        """Apply the verdicts to the message once: delete, dead-letter, hide, release or leave.

        Only a message held through an outage is released; a mapping failure waits out its
        visibility timeout so a bug does not spin.
        """
        with self._counts_lock:
            if parcel.settled:
                return
            parcel.settled = True
            for job in parcel.jobs:
                self.counts[(job.verdict or UNDECIDED).outcome] += 1
        plan = settlement(parcel, stopping=release)
        message = parcel.message
        fields = {"message_id": message.id, "action": plan.action.value}
        try:
            if touch_queue:
                self._apply(parcel, plan)
        except MessageGone:
            log.warning(
                "message %s: %s, but its lease had expired (another worker may process it again)",
                message.id,
                plan.action.value,
                extra=fields,
            )
            return
        except QueueError as error:
            log.error(
                "message %s: could not %s (%s); it reappears when its visibility ends",
                message.id,
                plan.action.value,
                error,
                extra=fields,
            )
            return
        except Exception:
            # A bug while settling one message must not end the loop or the batch's settling.
            log.exception(
                "message %s: settling (%s) failed unexpectedly; it reappears when its "
                "visibility ends",
                message.id,
                plan.action.value,
                extra=fields,
            )
            return
        for job in parcel.jobs:
            self._log_outcome(job)

    def send_member_poison(self, job: Job, reason: str, completed_key: str | None = None) -> None:
        """Put the poison record of one envelope of a pack, holding that envelope alone.

        `completed_key`: the ledger key recorded as done after this copy, named in the record
        so that a replay reopens it.
        """
        member = job.member
        assert member is not None
        place = (member.index, member.count, member.text())
        record = poison_record(
            job.message, reason, self.queue.name, utc_now(), place, completed_key=completed_key
        )
        self.queue.send_poison(record)

    def _apply(self, parcel: Parcel, plan: Settlement) -> None:
        message = parcel.message
        if plan.action is Action.DELETE:
            # Copy first, delete second: a crash in between leaves a duplicate, never a loss.
            for job in plan.copies:
                self.send_member_poison(job, (job.verdict or UNDECIDED).reason)
            self.queue.delete(message)
        elif plan.action is Action.DEAD_LETTER:
            self.queue.dead_letter(message, plan.reason)
        elif plan.action is Action.HIDE and plan.hide_for_s is not None:
            # Another worker holds an event: keep this copy out of sight until that claim
            # can have expired, so it neither spins nor climbs towards poison.
            parcel.message = self.queue.extend(message, plan.hide_for_s)
        elif plan.action is Action.RELEASE:
            self.queue.release(message)

    def _log_outcome(self, job: Job) -> None:
        verdict = job.verdict or UNDECIDED
        fields = {
            "message_id": job.message.id,
            "delivery_id": job.delivery_id,
            "outcome": verdict.outcome.value,
            "dequeue_count": job.message.dequeue_count,
        }
        if job.member is not None:
            fields["member"] = job.member.index
        log.info(
            "message %s (delivery %s): %s: %s",
            job.label,
            job.delivery_id or "-",
            verdict.outcome.value,
            verdict.reason,
            extra=fields,
        )
