"""The worker loop: receive a batch, process it, settle each message, heartbeat; repeat."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backend.backoff import Backoff
from backend.outcome import Outcome, TransientError, Verdict
from backend.parcel import Action, Job, Parcel, Settlement, settlement
from backend.processor import LedgerDown, Processor
from backend.shutdown import StopNow, Stopper
from backend.threadpool import Running, ThreadPool
from common.envelope import utc_now
from common.queue import (
    MessageGone,
    QueueConsumer,
    QueueError,
    QueueMessage,
    poison_record,
)
from common.settings import BackendSettings

log = logging.getLogger(__name__)

UNDECIDED = Verdict(Outcome.RETRY, "not decided before stopping")
# After a failed visibility extension, try again this soon (at most a quarter of the interval).
EXTEND_RETRY_S = 5.0
# The messages of a batch are settled side by side on this many threads. A settle is one or two
# queue calls, each ~2 ms of client CPU (the SDK pipeline, under the GIL) plus a round trip of a
# few ms within an Azure region: about 4 threads keep that CPU busy, 8 also cover slower round
# trips, more would only queue for the GIL. A batch of 32 takes 4 rounds instead of 32 calls.
# The queue client keeps one pooled connection per thread (backend.process).
SETTLE_THREADS = 8


@dataclass(frozen=True)
class WorkerConfig:
    """How one worker receives and holds messages."""

    max_messages_per_batch: int = 32
    visibility_timeout_s: int = 300
    poll_interval_s: float = 5.0
    queue_backoff_initial_s: float = 0.5
    queue_backoff_cap_s: float = 30.0
    sink_backoff_initial_s: float = 0.5
    sink_backoff_cap_s: float = 30.0
    heartbeat_interval_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: BackendSettings, lease_s: float | None = None) -> WorkerConfig:
        """The worker's part of the backend settings (and the ledger's claim lease)."""
        # A held batch wakes every half visibility timeout to extend it anyway, so retrying
        # the export less often than that saves nothing and delays recovery. Each retry also
        # renews the batch's ledger claims, so it comes well within the lease.
        sink_cap_s = min(cls.sink_backoff_cap_s, max(float(settings.visibility_timeout_s), 1.0))
        if lease_s is not None:
            sink_cap_s = min(sink_cap_s, max(lease_s / 2.0, 0.5))
        return cls(
            max_messages_per_batch=settings.max_messages_per_batch,
            visibility_timeout_s=settings.visibility_timeout_s,
            poll_interval_s=settings.poll_interval_s,
            sink_backoff_cap_s=sink_cap_s,
        )

    @property
    def extend_after_s(self) -> float:
        """Extend a held message's visibility once half of it has passed."""
        return self.visibility_timeout_s / 2.0


class Worker:
    """Drains the queue in batches and settles every message with exactly one outcome.

    `clock` and `sleep` are injectable so tests drive time; `sleep(seconds)` returns True when a
    stop was requested meanwhile (the real one is `Stopper.wait`).
    """

    def __init__(
        self,
        queue: QueueConsumer,
        processor: Processor,
        config: WorkerConfig,
        stopper: Stopper | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
        parent_pid: int | None = None,
    ) -> None:
        self.queue = queue
        self.processor = processor
        self.config = config
        self.stopper = stopper or Stopper()
        self.counts: Counter[Outcome] = Counter()
        self._settled_lock = threading.Lock()  # settles run on the pool's threads
        self._settlers = ThreadPool(SETTLE_THREADS, "settle")
        # The last batch's settles, still running while the next batch is received.
        self._settling: tuple[list[Parcel], Running] | None = None
        self._clock = clock
        self._sleep = sleep or self.stopper.wait
        self._parent_pid = parent_pid
        self._queue_backoff = Backoff(config.queue_backoff_initial_s, config.queue_backoff_cap_s)
        self._last_heartbeat = clock()
        self._extended_at = clock()

    def work(self, burst: bool = False) -> None:
        """Run until a stop is requested; in `burst` mode, return once the queue is empty."""
        log.info("worker %d started on queue %s", os.getpid(), self.queue.name)
        try:
            while not self.should_stop():
                batch = self.receive_batch()  # None: the queue is unreachable and we backed off
                if batch:
                    self.process_batch(batch)
                elif batch is not None:
                    self.finish_settling()
                    if burst:
                        break
                    self.idle()
                self.heartbeat()
                self.housekeeping()
        except BaseException:
            # A forced stop (or a bug) unwinds at once: the settles not started are dropped
            # (their messages reappear), only the requests already in flight are waited for.
            self.drop_settling()
            raise
        finally:
            try:
                self.finish_settling()
            finally:
                self._settlers.close()
        log.info("worker %d stopped: %s", os.getpid(), dict(self._summary()))

    def should_stop(self) -> bool:
        """A stop was requested, or the supervisor is gone (the worker is an orphan)."""
        if self.stopper.requested:
            return True
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            log.warning("worker %d: supervisor %d is gone, stopping", os.getpid(), self._parent_pid)
            self.stopper.request()
            return True
        return False

    def receive_batch(self) -> list[QueueMessage] | None:
        """One receive request; None (after backing off) when the queue is unreachable."""
        try:
            batch = self.queue.receive(
                self.config.max_messages_per_batch, self.config.visibility_timeout_s
            )
        except QueueError as error:
            # Any failure to receive (a 404 other than QueueNotFound included) is an unavailable
            # queue: back off and try again, never end the loop.
            if not self._queue_backoff.is_failing:
                log.warning(
                    "queue %s unreachable, backing off up to %.0f s: %s",
                    self.queue.name,
                    self._queue_backoff.cap_s,
                    error,
                )
            self._sleep(self._queue_backoff.next_delay_s())
            return None
        if self._queue_backoff.is_failing:
            log.info(
                "queue %s reachable again after %d failed receives",
                self.queue.name,
                self._queue_backoff.failures,
            )
            self._queue_backoff.reset()
        return batch

    def idle(self) -> None:
        """Sleep the poll interval; only ever called after an empty receive."""
        self._sleep(self.config.poll_interval_s)

    def process_batch(self, messages: Sequence[QueueMessage]) -> None:
        """Decide every envelope of the batch and settle each message, whatever happens.

        The settles run on while the next batch is received and decided (`finish_settling`
        waits for them): the queue's deletes and the next batch's work overlap.
        """
        self._extended_at = self._clock()
        parcels: list[Parcel] = []
        forced = False
        try:
            parcels += [self.processor.unpack(message) for message in messages]
            self.export_until_decided(parcels)
        except StopNow:
            forced = True
            raise
        finally:
            if forced:
                for parcel in parcels:
                    self.settle(parcel, touch_queue=False)
            else:
                self.start_settling(parcels, release=self.stopper.requested)

    def export_until_decided(self, parcels: list[Parcel]) -> None:
        """Advance the jobs until each has a verdict, holding the batch through an outage.

        While the sink or ledger fails no new batch is received (each receive would count
        against MAX_DEQUEUE_COUNT); held messages have their visibility extended instead.
        """
        backoff = Backoff(self.config.sink_backoff_initial_s, self.config.sink_backoff_cap_s)
        failing = ""  # "sink" or "ledger": what the current hold waits for
        jobs = [job for parcel in parcels for job in parcel.jobs]
        while True:
            self.keep_alive(parcels)
            try:
                self.processor.advance(jobs, self._send_member_poison)
            except TransientError as error:
                hint = error.retry_after_s
                detail = str(error)
                cause = "ledger" if isinstance(error, LedgerDown) else "sink"
            else:
                if backoff.is_failing:
                    log.info(
                        "%s answers again after %d failed tries; batch decided",
                        failing,
                        backoff.failures,
                    )
                return
            held = [job for job in jobs if job.verdict is None]
            if cause != failing:
                what = "export failed" if cause == "sink" else "ledger unavailable"
                log.warning(
                    "%s (%s): holding %d messages (%s), no new batches until it answers",
                    what,
                    detail,
                    len(held),
                    ", ".join(job.label for job in held),
                )
                failing = cause
            self.settle_all([parcel for parcel in parcels if parcel.decided])
            if self.sleep_keeping_alive(backoff.next_delay_s(hint or 0.0), parcels):
                log.info("stop requested while holding %d messages: releasing them", len(held))
                self.processor.release(held)
                return

    def sleep_keeping_alive(self, seconds: float, parcels: list[Parcel]) -> bool:
        """Sleep `seconds`, waking to extend the messages' visibility in time; True if stopping."""
        deadline = self._clock() + seconds
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self.stopper.requested
            next_extension = self._extended_at + self.config.extend_after_s - self._clock()
            if self._sleep(max(min(remaining, next_extension), 0.0)):
                return True
            self.keep_alive(parcels)

    def keep_alive(self, parcels: Sequence[Parcel]) -> None:
        """Extend the visibility of unsettled messages once half the timeout has passed.

        The time is recorded only once every extension succeeded; after a failure the next
        try comes EXTEND_RETRY_S later, not another half timeout (when the message is visible).
        """
        if self._clock() - self._extended_at < self.config.extend_after_s:
            return
        failed = False
        for parcel in parcels:
            if parcel.settled:
                continue
            message = parcel.message
            try:
                parcel.message = self.queue.extend(message, self.config.visibility_timeout_s)
            except MessageGone:
                log.warning("message %s: lease lost before it could be extended", message.id)
            except QueueError as error:
                failed = True
                log.warning("message %s: could not extend visibility: %s", message.id, error)
        if not failed:
            self._extended_at = self._clock()
        else:
            retry_s = min(EXTEND_RETRY_S, self.config.extend_after_s / 4.0)
            self._extended_at = self._clock() - self.config.extend_after_s + retry_s

    def settle_all(self, parcels: Sequence[Parcel], release: bool = False) -> None:
        """Settle the messages side by side; all of them are settled when this returns."""
        self.start_settling(parcels, release)
        self.finish_settling()

    def start_settling(self, parcels: Sequence[Parcel], release: bool = False) -> None:
        """Start settling the messages side by side, once the batch before is all settled."""
        self.finish_settling()
        pending = [parcel for parcel in parcels if not parcel.settled]

        def settle_one(parcel: Parcel) -> None:
            self.settle(parcel, release=release)

        self._settling = (pending, self._settlers.start_all(settle_one, pending))

    def drop_settling(self) -> None:
        """Cancel the settles not started yet and wait for those running."""
        if self._settling is not None:
            _pending, running = self._settling
            self._settling = None
            running.cancel_and_wait()

    def finish_settling(self) -> None:
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

    def settle(self, parcel: Parcel, touch_queue: bool = True, release: bool = False) -> None:
        """Apply the verdicts to the message once: delete, dead-letter, hide, release or leave.

        Only a message held through an outage is released; a mapping failure waits out its
        visibility timeout so a bug does not spin.
        """
        with self._settled_lock:
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

    def _apply(self, parcel: Parcel, plan: Settlement) -> None:
        message = parcel.message
        if plan.action is Action.DELETE:
            # Copy first, delete second: a crash in between leaves a duplicate, never a loss.
            for job in plan.poisoned:
                if not job.poison_sent:
                    self._send_member_poison(job, (job.verdict or UNDECIDED).reason)
            self.queue.delete(message)
        elif plan.action is Action.DEAD_LETTER:
            self.queue.dead_letter(message, plan.reason)
        elif plan.action is Action.HIDE and plan.hide_for_s is not None:
            # Another worker holds an event: keep this copy out of sight until that claim
            # can have expired, so it neither spins nor climbs towards poison.
            parcel.message = self.queue.extend(message, plan.hide_for_s)
        elif plan.action is Action.RELEASE:
            self.queue.release(message)

    def _send_member_poison(self, job: Job, reason: str) -> None:
        """Put the poison record of one envelope of a pack, holding that envelope alone."""
        member = job.member
        assert member is not None
        place = (member.index, member.count, member.text())
        record = poison_record(job.message, reason, self.queue.name, utc_now(), place)
        self.queue.send_poison(record)
        job.poison_sent = True

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

    def housekeeping(self) -> None:
        """Between batches, never inside one: purge the ledger when this worker's turn is due."""
        self.processor.purge_if_due()

    def heartbeat(self) -> None:
        """Log the outcome counts at most once per heartbeat interval."""
        now = self._clock()
        if now - self._last_heartbeat >= self.config.heartbeat_interval_s:
            self._last_heartbeat = now
            log.info("worker %d alive: %s", os.getpid(), dict(self._summary()))

    def _summary(self) -> dict[str, int]:
        return {outcome.value: self.counts[outcome] for outcome in Outcome}
