"""Recover failed deliveries: redeliver each failed event the ledger has not seen exported.

GitHub never retries a failed delivery and keeps deliveries for 3 days; an event that met a
503 (queue outage), a timeout or a deploy is lost unless someone asks for a redelivery.
https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backend.github.client import GitHubError
from backend.github.deliveries import (
    KEPT_EVENTS,
    Attempt,
    Delivery,
    envelope_of,
    group,
    parse_attempt,
)
from backend.github.hooks import Hook
from backend.idempotency.ledger import completion_key
from backend.idempotency.records import Records, Redelivery
from backend.telemetry.errors import MappingError
from backend.telemetry.keys import event_key

log = logging.getLogger(__name__)

# GitHub keeps a hook's deliveries for 3 days: the first run looks that far back.
RETENTION = timedelta(hours=72)
MAX_REDELIVERIES = 3
# GitHub's 422 when the endpoint was redelivered to too often.
SPAMMED_STATUS = 422


@dataclass
class Summary:
    """What one run found and did, counted per guid."""

    seen: int = 0
    failed: int = 0
    exported: int = 0
    redelivered: int = 0
    pending: int = 0
    given_up: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every redelivery asked for was accepted."""
        return not self.refused

    def line(self, dry_run: bool = False) -> str:
        """The summary line the command prints."""
        verb = "would redeliver" if dry_run else "redelivered"
        text = (
            f"seen {self.seen}, failed {self.failed}, already exported {self.exported}, "
            f"{verb} {self.redelivered}, awaiting an earlier redelivery {self.pending}, "
            f"given up {len(self.given_up)}"
        )
        if self.refused:
            text += f", refused by GitHub {len(self.refused)}"
        return text


class Pacer:
    """Keeps mutating calls at least `interval_s` apart."""

    def __init__(
        self,
        interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self._sleep = sleep
        self._clock = clock
        self._last: float | None = None

    def wait(self) -> None:
        """Sleep until `interval_s` has passed since the previous call of `wait`."""
        if self._last is not None:
            remaining = self._last + self.interval_s - self._clock()
            if remaining > 0:
                self._sleep(remaining)
        self._last = self._clock()


class Recovery:
    """One run of `recover` over one hook."""

    def __init__(
        self,
        hook: Hook,
        records: Records,
        pacer: Pacer,
        now: datetime,
        dry_run: bool = False,
    ) -> None:
        self.hook = hook
        self.records = records
        self.pacer = pacer
        self.now = now
        self.dry_run = dry_run
        self.summary = Summary()

    @property
    def checkpoint_name(self) -> str:
        """The checkpoint's name in the ledger's table."""
        return f"recover:{self.hook.name}"

    def run(self) -> Summary:
        """List back to the checkpoint, redeliver what needs it, then advance the checkpoint.

        Raises:
            GitHubError: a call failed; the checkpoint stays where it was.
            LedgerError: the ledger's table failed; the checkpoint stays where it was.
        """
        since = self._since()
        attempts = list(self._attempts(since))
        deliveries = group(attempt for attempt in attempts if attempt.event in KEPT_EVENTS)
        self.summary.seen = len(deliveries)
        for delivery in deliveries:
            if not delivery.succeeded:
                self.summary.failed += 1
                self._recover(delivery)
        if attempts and self.summary.ok and not self.dry_run:
            newest = max(attempt.delivered_at for attempt in attempts)
            self.records.save_checkpoint(self.checkpoint_name, newest.isoformat(), self.now)
        return self.summary

    def _since(self) -> datetime:
        floor = self.now - RETENTION
        saved = self.records.checkpoint(self.checkpoint_name)
        if saved is None:
            return floor
        return max(floor, datetime.fromisoformat(saved))

    def _attempts(self, since: datetime) -> Iterator[Attempt]:
        """Attempts newest first, down to `since` (attempts at `since` itself are listed again)."""
        for item in self.hook.deliveries():
            attempt = parse_attempt(item)
            if attempt is None:
                continue
            if attempt.delivered_at < since:
                return
            yield attempt

    def _recover(self, delivery: Delivery) -> None:
        name = f"{self.hook.name}:{delivery.guid}"
        newest = delivery.newest
        state = self.records.redelivery(name)
        if state is not None and newest.id <= state.last_delivery_id:
            # Our last redelivery has not shown up in the log yet: asking again would repeat it.
            self.summary.pending += 1
            return
        if self._was_exported(newest):
            self.summary.exported += 1
            return
        count = state.count if state is not None else 0
        if count >= MAX_REDELIVERIES:
            log.warning(
                "delivery %s (%s): still failing after %d redeliveries, given up",
                delivery.guid,
                newest.event,
                count,
            )
            self.summary.given_up.append(delivery.guid)
            return
        if self.dry_run:
            log.info("delivery %s (%s): would be redelivered", delivery.guid, newest.event)
            self.summary.redelivered += 1
            return
        self.pacer.wait()
        try:
            self.hook.redeliver(newest.id)
        except GitHubError as error:
            if error.status != SPAMMED_STATUS:
                raise
            log.warning("delivery %s: redelivery refused: %s", delivery.guid, error)
            self.summary.refused.append(delivery.guid)
            # Counted against the limit; no attempt will appear, so nothing to wait for.
            self.records.save_redelivery(name, Redelivery(count + 1, 0), self.now)
            return
        log.info("delivery %s (%s): redelivered attempt %d", delivery.guid, newest.event, newest.id)
        self.summary.redelivered += 1
        self.records.save_redelivery(name, Redelivery(count + 1, newest.id), self.now)

    def _was_exported(self, attempt: Attempt) -> bool:
        """True when the ledger has the event, or its entity's completion, as exported."""
        envelope = envelope_of(self.hook.delivery(attempt.id), attempt, self.now)
        if envelope is None:
            return False
        try:
            key = event_key(envelope)
        except MappingError:
            return False
        return bool(self.records.exported([key, completion_key(key)]))
