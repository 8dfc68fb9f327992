"""A job's lifecycle: each named transition from the states it may start from, and no other."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from backend.outcome import Outcome, Verdict
from backend.parcel import Action, IllegalTransition, Job, JobState, Parcel, settlement
from backend.telemetry.item import TelemetryItem
from common.envelope import Member
from common.queue import QueueMessage

KEY = "workflow_run:1:1:completed"
ITEMS = [TelemetryItem("WorkflowRun", datetime(2024, 5, 1, tzinfo=UTC))] * 2
DONE = Verdict(Outcome.DONE, "accepted")
POISON = Verdict(Outcome.POISON, "rejected")
S = JobState


def fresh_job(parcel: Parcel | None = None, member: Member | None = None) -> Job:
    """A job just decoded from a message of its own (or of `parcel`)."""
    parcel = parcel or Parcel(QueueMessage("m1", "receipt", "text", dequeue_count=1))
    job = Job(parcel, member)
    parcel.jobs.append(job)
    return job


# Each transition as the processor asks for it.
STEPS: dict[str, Callable[[Job], None]] = {
    "triage": lambda job: job.triaged(KEY, list(ITEMS)),
    "claim": Job.claimed,
    "follow": lambda job: job.follow(fresh_job()),
    "abandon": Job.abandoned,
    "export": Job.exported,
    "copy": Job.copied,
    "wait": lambda job: job.wait_for_claim(30, "another worker holds it"),
    "decide": lambda job: job.decide(DONE),
    "poison": lambda job: job.decide(POISON),
}

# The way to each state from RECEIVED.
PATHS: dict[JobState, list[str]] = {
    S.RECEIVED: [],
    S.TRIAGED: ["triage"],
    S.CLAIMED: ["triage", "claim"],
    S.FOLLOWING: ["triage", "follow"],
    S.EXPORTED: ["triage", "claim", "export"],
    S.COPIED: ["triage", "claim", "export", "copy"],
    S.DECIDED: ["decide"],
    S.WAITING: ["triage", "wait"],
    S.DEAD_LETTERED: ["triage", "claim", "export", "copy", "poison"],
}

# Every legal (state, transition) and where it leads; any other pair is illegal.
LEGAL: dict[tuple[JobState, str], JobState] = {
    (S.RECEIVED, "triage"): S.TRIAGED,
    (S.RECEIVED, "decide"): S.DECIDED,
    (S.RECEIVED, "poison"): S.DECIDED,
    (S.TRIAGED, "claim"): S.CLAIMED,
    (S.TRIAGED, "follow"): S.FOLLOWING,
    (S.TRIAGED, "wait"): S.WAITING,
    (S.TRIAGED, "decide"): S.DECIDED,
    (S.TRIAGED, "poison"): S.DECIDED,
    (S.CLAIMED, "claim"): S.CLAIMED,  # renewing the claim on a retry
    (S.CLAIMED, "follow"): S.FOLLOWING,
    (S.CLAIMED, "abandon"): S.TRIAGED,
    (S.CLAIMED, "export"): S.EXPORTED,
    (S.CLAIMED, "wait"): S.WAITING,
    (S.CLAIMED, "decide"): S.DECIDED,
    (S.CLAIMED, "poison"): S.DECIDED,
    (S.FOLLOWING, "wait"): S.WAITING,
    (S.FOLLOWING, "decide"): S.DECIDED,
    (S.FOLLOWING, "poison"): S.DECIDED,
    (S.EXPORTED, "copy"): S.COPIED,
    (S.EXPORTED, "decide"): S.DECIDED,
    (S.EXPORTED, "poison"): S.DECIDED,
    (S.COPIED, "poison"): S.DEAD_LETTERED,
}


def job_in(state: JobState) -> Job:
    job = fresh_job()
    for step in PATHS[state]:
        STEPS[step](job)
    assert job.state is state
    return job


@pytest.mark.parametrize("state", list(JobState), ids=lambda state: state.name)
@pytest.mark.parametrize("transition", list(STEPS))
def test_a_transition_moves_only_from_the_states_it_starts_from(
    state: JobState, transition: str
) -> None:
    job = job_in(state)
    if (state, transition) in LEGAL:
        STEPS[transition](job)
        assert job.state is LEGAL[(state, transition)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            STEPS[transition](job)
        assert job.state is state
        assert raised.value.state is state


def test_an_illegal_transition_names_the_job_the_transition_and_the_state() -> None:
    job = job_in(S.TRIAGED)

    with pytest.raises(IllegalTransition) as raised:
        job.exported()

    assert str(raised.value) == "job m1: cannot export from TRIAGED"
    assert (raised.value.state, raised.value.transition) == (S.TRIAGED, "export")


def test_a_job_whose_poison_copy_was_sent_cannot_be_done() -> None:
    job = job_in(S.COPIED)

    with pytest.raises(IllegalTransition, match="cannot decide from COPIED"):
        job.decide(DONE)

    assert (job.state, job.verdict) == (S.COPIED, None)


@pytest.mark.parametrize(
    ("state", "holds_claim", "is_decided"),
    [
        (S.RECEIVED, False, False),
        (S.TRIAGED, False, False),
        (S.CLAIMED, True, False),
        (S.FOLLOWING, False, False),
        (S.EXPORTED, True, False),
        (S.COPIED, True, False),
        (S.DECIDED, False, True),
        (S.WAITING, False, True),
        (S.DEAD_LETTERED, False, True),
    ],
    ids=lambda value: value.name if isinstance(value, JobState) else str(value),
)
def test_each_state_says_whether_the_claim_is_held_and_the_job_decided(
    state: JobState, holds_claim: bool, is_decided: bool
) -> None:
    job = job_in(state)
    assert (job.holds_claim, job.is_decided) == (holds_claim, is_decided)


def test_the_transitions_carry_their_data() -> None:
    primary = job_in(S.CLAIMED)
    job = fresh_job()

    job.triaged(KEY, list(ITEMS))
    assert (job.key, job.items, job.pending, job.verdict) == (KEY, ITEMS, [0, 1], None)
    assert job.outcome is Outcome.RETRY  # undecided: its message would be retried

    job.follow(primary)
    assert (job.primary, job.pending) == (primary, [])

    job.wait_for_claim(45, "another worker holds it")
    assert (job.hide_for_s, job.verdict) == (45, Verdict(Outcome.RETRY, "another worker holds it"))


def test_a_message_is_left_while_a_job_is_undecided_and_released_when_stopping() -> None:
    parcel = Parcel(QueueMessage("m1", "receipt", "text", dequeue_count=1))
    done, undecided = fresh_job(parcel), fresh_job(parcel)
    done.decide(DONE)
    undecided.triaged(KEY, list(ITEMS))

    assert settlement(parcel, stopping=False).action is Action.LEAVE
    assert settlement(parcel, stopping=True).action is Action.RELEASE


def test_a_message_hides_as_long_as_its_longest_wait_and_is_left_for_any_other_retry() -> None:
    parcel = Parcel(QueueMessage("m1", "receipt", "text", dequeue_count=1))
    short, long, done = fresh_job(parcel), fresh_job(parcel), fresh_job(parcel)
    for job, hide_s in ((short, 10), (long, 30)):
        job.triaged(KEY, list(ITEMS))
        job.wait_for_claim(hide_s, "another worker holds it")
    done.decide(DONE)

    assert settlement(parcel, stopping=False) == settlement(parcel, stopping=True)
    assert settlement(parcel, stopping=False).hide_for_s == 30

    retried = fresh_job()
    retried.decide(Verdict(Outcome.RETRY, "mapping raised KeyError"))
    assert settlement(retried.parcel, stopping=False).action is Action.LEAVE


def test_a_single_poisoned_envelope_dead_letters_its_message_with_its_reason() -> None:
    job = fresh_job()
    job.decide(POISON)

    plan = settlement(job.parcel, stopping=False)

    assert (plan.action, plan.reason, plan.copies) == (Action.DEAD_LETTER, "rejected", ())


def test_a_pack_is_deleted_after_copying_only_the_poisoned_members_not_copied_yet() -> None:
    parcel = Parcel(QueueMessage("m1", "receipt", "text", dequeue_count=1))
    members = [Member(index, 3, {}) for index in range(3)]
    copied, poisoned, done = (fresh_job(parcel, member) for member in members)
    for step in PATHS[S.DEAD_LETTERED]:
        STEPS[step](copied)
    poisoned.decide(POISON)
    done.decide(DONE)

    plan = settlement(parcel, stopping=False)

    assert (plan.action, plan.copies) == (Action.DELETE, (poisoned,))
