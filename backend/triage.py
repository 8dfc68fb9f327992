"""Triage: decode a message into one job per envelope, key each envelope and map it.

What triage decides needs no ledger and no sink: bad input is poisoned, an event without
telemetry is done, and every other job leaves TRIAGED with its key and items for the claim.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backend.idempotency.ledger import check_key
from backend.outcome import Outcome, Verdict
from backend.parcel import Job, Parcel
from backend.telemetry.item import TelemetryItem
from backend.telemetry.mapping import MappingError, has_telemetry
from common.envelope import Envelope, EnvelopeError, decode_members, utc_now
from common.queue import QueueMessage

log = logging.getLogger(__name__)

Mapper = Callable[[Envelope, datetime], list[TelemetryItem]]
KeyFunction = Callable[[Envelope], str]


def default_mapping() -> tuple[Mapper, KeyFunction]:
    """The project's telemetry mapping and event key, imported when a processor is built."""
    from backend.telemetry.keys import event_key
    from backend.telemetry.mapping import to_telemetry

    return to_telemetry, event_key


class Triage:
    """Unpacks messages into jobs and triages each envelope; MAX_DEQUEUE_COUNT is its rule."""

    def __init__(
        self,
        max_dequeue_count: int,
        mapper: Mapper | None = None,
        key_of: KeyFunction | None = None,
        now: Callable[[], datetime] = utc_now,
        is_mapped: Callable[[Envelope], bool] = has_telemetry,
    ) -> None:
        if mapper is None or key_of is None:
            default_mapper, default_key = default_mapping()
            mapper = mapper or default_mapper
            key_of = key_of or default_key
        self.max_dequeue_count = max_dequeue_count
        self._mapper = mapper
        self._key_of = key_of
        self._now = now
        self._is_mapped = is_mapped

    def unpack(self, message: QueueMessage) -> Parcel:
        """Decode a message into one job per envelope and triage each.

        An unreadable message is one job, poisoned whole. An invalid member of a pack is a
        job poisoned alone; the pack's other members go on.
        """
        parcel = Parcel(message)
        try:
            members = decode_members(message.content)
        except EnvelopeError as error:
            parcel.jobs = [Job(parcel)]
            parcel.jobs[0].decide(Verdict(Outcome.POISON, _named(error)))
            return parcel
        except Exception as error:
            parcel.jobs = [Job(parcel)]
            parcel.jobs[0].decide(self._unexpected(parcel.jobs[0], error))
            return parcel
        for member in members:
            job = Job(parcel, member if member.count > 1 else None, member.envelope)
            parcel.jobs.append(job)
            if member.error is not None:
                job.decide(Verdict(Outcome.POISON, _named(member.error)))
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
        overdelivered = self.is_overdelivered(job)
        items: list[TelemetryItem] = []
        try:
            key = check_key(self._key_of(job.envelope))
            if not overdelivered:
                items = list(self._mapper(job.envelope, self._now()))
            elif not self._is_mapped(job.envelope):
                job.decide(_no_telemetry(job.envelope))
                return
        except (EnvelopeError, MappingError, ValueError) as error:
            job.decide(Verdict(Outcome.POISON, _named(error)))
            return
        except Exception as error:
            job.decide(self._unexpected(job, error))
            return
        if not items and not overdelivered:
            job.decide(_no_telemetry(job.envelope))
            return
        job.triaged(key, items)

    def is_overdelivered(self, job: Job) -> bool:
        """Its message was received more than MAX_DEQUEUE_COUNT times."""
        return job.message.dequeue_count > self.max_dequeue_count

    def overdelivered(self, job: Job) -> Verdict:
        """The poison verdict of a job whose message was received too often."""
        return Verdict(
            Outcome.POISON,
            f"received {job.message.dequeue_count} times, more than MAX_DEQUEUE_COUNT "
            f"({self.max_dequeue_count})",
        )

    def _unexpected(self, job: Job, error: Exception) -> Verdict:
        if self.is_overdelivered(job):
            return self.overdelivered(job)
        # A bug, not bad input: leave the message; its dequeue count ends it in poison.
        log.exception("message %s: mapping failed unexpectedly", job.label)
        return Verdict(Outcome.RETRY, f"mapping raised {type(error).__name__}")


def _no_telemetry(envelope: Envelope) -> Verdict:
    return Verdict(Outcome.DONE, f"no telemetry for {envelope.event} action {envelope.action!r}")


def _named(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
