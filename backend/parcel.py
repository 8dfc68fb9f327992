"""A received message, the jobs of the envelopes it carries, and how the message is settled.

A message carries one envelope or a pack of several (`common.envelope`). Each envelope is one
`Job` with its own key, claim and verdict; the message is settled once, from all of them: it
is deleted only when every job is DONE or POISON (each poisoned member of a pack copied to
the poison queue alone first), and otherwise kept for the jobs still to do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from backend.outcome import Outcome, Verdict
from backend.telemetry.item import TelemetryItem
from common.envelope import Envelope, Member
from common.queue import QueueMessage


@dataclass(eq=False)
class Parcel:
    """One received message and the jobs of its envelopes."""

    message: QueueMessage
    jobs: list[Job] = field(default_factory=list)
    settled: bool = False

    @property
    def is_pack(self) -> bool:
        """The message carries a pack: a poisoned envelope is copied to poison alone."""
        return any(job.member is not None for job in self.jobs)

    @property
    def decided(self) -> bool:
        """Every job of the message has a verdict."""
        return all(job.verdict is not None for job in self.jobs)


@dataclass(eq=False)
class Job:
    """One envelope in hand and how far its handling got."""

    parcel: Parcel
    member: Member | None = None  # its place in a pack; None for a single-envelope message
    envelope: Envelope | None = None
    key: str = ""
    items: list[TelemetryItem] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    overdelivered: bool = False  # its message was received more than MAX_DEQUEUE_COUNT times
    claimed: bool = False  # this worker holds the key's claim in the ledger
    exported: bool = False  # every item accepted; the ledger's `complete` is still due
    primary: Job | None = None  # another copy of the same event in this batch carries it
    hide_for_s: int | None = None  # keep the message invisible this long instead of releasing
    poison_sent: bool = False  # this envelope's poison copy is already on the poison queue
    verdict: Verdict | None = None

    @property
    def message(self) -> QueueMessage:
        """The queue message carrying this envelope (its receipt changes when extended)."""
        return self.parcel.message

    @property
    def delivery_id(self) -> str:
        """The GitHub delivery id once the envelope decoded, else empty."""
        return self.envelope.delivery_id if self.envelope is not None else ""

    @property
    def label(self) -> str:
        """The message id, with the member's place for an envelope of a pack."""
        if self.member is None:
            return self.message.id
        return f"{self.message.id} [{self.member.index + 1}/{self.member.count}]"


class Action(enum.Enum):
    """What happens to the message itself."""

    DELETE = "delete"  # every job done or poisoned (poisoned pack members copied first)
    DEAD_LETTER = "dead_letter"  # a single envelope, or an unreadable message, poisoned whole
    HIDE = "hide"  # a job waits for another worker's claim: out of sight for `hide_for_s`
    RELEASE = "release"  # stopping with jobs undecided: visible again now
    LEAVE = "leave"  # it reappears when its visibility timeout ends


@dataclass(frozen=True)
class Settlement:
    """The action on a message, and the poisoned pack members to copy before deleting it."""

    action: Action
    reason: str = ""
    hide_for_s: int | None = None
    poisoned: tuple[Job, ...] = ()


def settlement(parcel: Parcel, stopping: bool) -> Settlement:
    """Decide the message from its jobs' verdicts; `stopping` releases what is undecided."""
    verdicts = [job.verdict for job in parcel.jobs]
    if any(verdict is None for verdict in verdicts):
        return Settlement(Action.RELEASE if stopping else Action.LEAVE)
    retrying = [job for job in parcel.jobs if _outcome(job) is Outcome.RETRY]
    if retrying:
        # Jobs already done are DONE in the ledger when the message comes back.
        hides = [job.hide_for_s for job in retrying if job.hide_for_s is not None]
        return Settlement(Action.HIDE, hide_for_s=max(hides)) if hides else Settlement(Action.LEAVE)
    poisoned = tuple(job for job in parcel.jobs if _outcome(job) is Outcome.POISON)
    if not parcel.is_pack and poisoned:
        return Settlement(Action.DEAD_LETTER, reason=_reason(poisoned[0]))
    return Settlement(Action.DELETE, poisoned=poisoned)


def _outcome(job: Job) -> Outcome:
    return job.verdict.outcome if job.verdict is not None else Outcome.RETRY


def _reason(job: Job) -> str:
    return job.verdict.reason if job.verdict is not None else ""
