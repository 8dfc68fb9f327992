"""A received message, the jobs of the envelopes it carries, and how the message is settled.

A message carries one envelope or a pack of several (`common.envelope`). Each envelope is one
`Job` with its own key, claim and verdict; it moves through `JobState`s by the named transitions
of `TRANSITIONS`, each allowed only from the states listed there. The message is settled once,
from all its jobs: it is deleted only when every job is done or poisoned (each poisoned member
of a pack copied to the poison queue alone first), and otherwise kept for the jobs still to do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from backend.outcome import Outcome, Verdict
from backend.telemetry.item import TelemetryItem
from common.envelope import Envelope, Member
from common.queue import QueueMessage


class JobState(enum.Enum):
    """How far the handling of one envelope got; the last three are decided."""

    RECEIVED = "received"  # decoded, not keyed or mapped yet
    TRIAGED = "triaged"  # keyed, and mapped unless received too often: its claim comes next
    CLAIMED = "claimed"  # this worker holds the key's claim and exports the pending items
    FOLLOWING = "following"  # another copy of the same event in this batch carries it
    EXPORTED = "exported"  # every item answered, the claim still held: `complete` is due
    COPIED = "copied"  # exported with items rejected, its poison copy sent: `complete` is due
    DECIDED = "decided"  # it has its verdict; its message settles it
    WAITING = "waiting"  # decided to retry: another worker holds the event, so it hides
    DEAD_LETTERED = "dead_lettered"  # decided poison, its poison copy already sent


UNDECIDED_STATES = frozenset(
    {
        JobState.RECEIVED,
        JobState.TRIAGED,
        JobState.CLAIMED,
        JobState.FOLLOWING,
        JobState.EXPORTED,
        JobState.COPIED,
    }
)
# This worker holds the key's claim in the ledger in these states.
CLAIM_STATES = frozenset({JobState.CLAIMED, JobState.EXPORTED, JobState.COPIED})

# Each transition: the states it starts from, and the state it leads to. Any undecided job may
# be decided at once (bad input, a duplicate, received too often); one whose poison copy was
# sent may only be poisoned, and is then dead-lettered.
TRANSITIONS: dict[str, tuple[frozenset[JobState], JobState]] = {
    "triage": (frozenset({JobState.RECEIVED}), JobState.TRIAGED),
    "claim": (frozenset({JobState.TRIAGED, JobState.CLAIMED}), JobState.CLAIMED),
    "follow": (frozenset({JobState.TRIAGED, JobState.CLAIMED}), JobState.FOLLOWING),
    "abandon": (frozenset({JobState.CLAIMED}), JobState.TRIAGED),
    "export": (frozenset({JobState.CLAIMED}), JobState.EXPORTED),
    "copy": (frozenset({JobState.EXPORTED}), JobState.COPIED),
    "wait for a claim": (
        frozenset({JobState.TRIAGED, JobState.CLAIMED, JobState.FOLLOWING}),
        JobState.WAITING,
    ),
    "decide": (UNDECIDED_STATES - {JobState.COPIED}, JobState.DECIDED),
    "dead-letter": (frozenset({JobState.COPIED}), JobState.DEAD_LETTERED),
}


class IllegalTransition(RuntimeError):
    """A transition was asked of a job in a state it does not start from: a bug."""

    def __init__(self, job: Job, transition: str) -> None:
        super().__init__(f"job {job.label}: cannot {transition} from {job.state.name}")
        self.state = job.state
        self.transition = transition


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
        return all(job.is_decided for job in self.jobs)


@dataclass(eq=False)
class Job:
    """One envelope in hand: its data, its state, and once decided its verdict."""

    parcel: Parcel
    member: Member | None = None  # its place in a pack; None for a single-envelope message
    envelope: Envelope | None = None
    key: str = ""
    items: list[TelemetryItem] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # indexes of the items still to export
    rejections: list[str] = field(default_factory=list)
    # Set by the transitions only.
    state: JobState = field(default=JobState.RECEIVED, init=False)
    verdict: Verdict | None = field(default=None, init=False)
    primary: Job | None = field(default=None, init=False)  # FOLLOWING: the copy carrying it
    hide_for_s: int = field(default=0, init=False)  # WAITING: how long its message hides

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

    @property
    def is_decided(self) -> bool:
        """It has its verdict."""
        return self.state not in UNDECIDED_STATES

    @property
    def holds_claim(self) -> bool:
        """This worker holds the key's claim in the ledger."""
        return self.state in CLAIM_STATES

    @property
    def outcome(self) -> Outcome:
        """The verdict's outcome; an undecided job is retried."""
        return self.verdict.outcome if self.verdict is not None else Outcome.RETRY

    def triaged(self, key: str, items: list[TelemetryItem]) -> None:
        """Keyed and mapped: every item is pending, the claim comes next."""
        self._move("triage")
        self.key, self.items, self.pending = key, items, list(range(len(items)))

    def claimed(self) -> None:
        """The ledger gave this worker the key's claim (again, when renewing it)."""
        self._move("claim")

    def follow(self, primary: Job) -> None:
        """Another copy of the same event in the batch carries it; this one takes its verdict."""
        self._move("follow")
        self.primary, self.pending = primary, []

    def abandoned(self) -> None:
        """The claim was given back with nothing exported (stopping): to be claimed again."""
        self._move("abandon")

    def exported(self) -> None:
        """Every item was answered, accepted or rejected; the ledger's `complete` is due."""
        self._move("export")

    def copied(self) -> None:
        """Its poison copy is on the poison queue; the ledger's `complete` is still due."""
        self._move("copy")

    def wait_for_claim(self, hide_for_s: int, reason: str) -> None:
        """Decided to retry: another worker holds the event, so its message hides this long."""
        self._move("wait for a claim")
        self.hide_for_s, self.verdict = hide_for_s, Verdict(Outcome.RETRY, reason)

    def decide(self, verdict: Verdict) -> None:
        """Give it its verdict; a copied job can only be poisoned, and stays dead-lettered."""
        copied = self.state is JobState.COPIED and verdict.outcome is Outcome.POISON
        self._move("dead-letter" if copied else "decide")
        self.verdict = verdict

    def _move(self, transition: str) -> None:
        starts, to = TRANSITIONS[transition]
        if self.state not in starts:
            raise IllegalTransition(self, transition)
        self.state = to


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
    copies: tuple[Job, ...] = ()


def settlement(parcel: Parcel, stopping: bool) -> Settlement:
    """Decide the message from its jobs' verdicts; `stopping` releases what is undecided."""
    if not parcel.decided:
        return Settlement(Action.RELEASE if stopping else Action.LEAVE)
    retrying = [job for job in parcel.jobs if job.outcome is Outcome.RETRY]
    if retrying:
        # Jobs already done are DONE in the ledger when the message comes back.
        hides = [job.hide_for_s for job in retrying if job.state is JobState.WAITING]
        return Settlement(Action.HIDE, hide_for_s=max(hides)) if hides else Settlement(Action.LEAVE)
    poisoned = [job for job in parcel.jobs if job.outcome is Outcome.POISON]
    if not parcel.is_pack and poisoned:
        return Settlement(Action.DEAD_LETTER, reason=_reason(poisoned[0]))
    copies = tuple(job for job in poisoned if job.state is not JobState.DEAD_LETTERED)
    return Settlement(Action.DELETE, copies=copies)


def _reason(job: Job) -> str:
    return job.verdict.reason if job.verdict is not None else ""
