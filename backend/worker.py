"""The worker loop: receive a batch, process it, settle each message, heartbeat; repeat.

Settling the messages lives in `backend.settler`, keeping a held batch invisible in
`backend.visibility`; the loop and holding a batch through an outage live here.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from backend.backoff import Backoff
from backend.outcome import Outcome, TransientError
from backend.parcel import Parcel
from backend.processor import LedgerDown, Processor
from backend.settings import BackendSettings
from backend.settler import Settler
from backend.shutdown import StopNow, Stopper
from backend.visibility import VisibilityKeeper
from common.queue import QueueConsumer, QueueError, QueueMessage

log = logging.getLogger(__name__)

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
        self.settler = Settler(queue, SETTLE_THREADS)
        self._clock = clock
        self._sleep = sleep or self.stopper.wait
        self.visibility = VisibilityKeeper(
            queue, config.visibility_timeout_s, clock, self._sleep, lambda: self.stopper.requested
        )
        self._parent_pid = parent_pid
        self._queue_backoff = Backoff(config.queue_backoff_initial_s, config.queue_backoff_cap_s)
        self._last_heartbeat = clock()

    @property
    def counts(self) -> Counter[Outcome]:
        """How many envelopes were settled with each outcome."""
        return self.settler.counts

    def work(self, burst: bool = False) -> None:
        """Run until a stop is requested; in `burst` mode, return once the queue is empty."""
        log.info("worker %d started on queue %s", os.getpid(), self.queue.name)
        try:
            while not self.should_stop():
                batch = self.receive_batch()  # None: the queue is unreachable and we backed off
                if batch:
                    self.process_batch(batch)
                elif batch is not None:
                    self.settler.finish()
                    if burst:
                        break
                    self.idle()
                self.heartbeat()
                self.housekeeping()
        except BaseException:
            # A forced stop (or a bug) unwinds at once: the settles not started are dropped
            # (their messages reappear), only the requests already in flight are waited for.
            self.settler.drop()
            raise
        finally:
            try:
                self.settler.finish()
            finally:
                self.settler.close()
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

        The settles run on while the next batch is received and decided (`Settler.finish`
        waits for them): the queue's deletes and the next batch's work overlap.
        """
        self.visibility.received()
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
                    self.settler.settle(parcel, touch_queue=False)
            else:
                self.settler.start(parcels, release=self.stopper.requested)

    def export_until_decided(self, parcels: list[Parcel]) -> None:
        """Advance the jobs until each has a verdict, holding the batch through an outage.

        While the sink or ledger fails no new batch is received (each receive would count
        against MAX_DEQUEUE_COUNT); held messages have their visibility extended instead.
        """
        backoff = Backoff(self.config.sink_backoff_initial_s, self.config.sink_backoff_cap_s)
        failing = ""  # "sink" or "ledger": what the current hold waits for
        jobs = [job for parcel in parcels for job in parcel.jobs]
        while True:
            self.visibility.keep_alive(parcels)
            try:
                self.processor.advance(jobs, self.settler.send_member_poison)
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
            held = [job for job in jobs if not job.is_decided]
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
            self.settler.settle_all([parcel for parcel in parcels if parcel.decided])
            if self.visibility.sleep(backoff.next_delay_s(hint or 0.0), parcels):
                log.info("stop requested while holding %d messages: releasing them", len(held))
                self.processor.release(held)
                return

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
