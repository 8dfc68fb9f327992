"""The dashboard's figures, from sink events, with the definitions of docs/queries/*.kql.

Each function mirrors one query file (named in its docstring); `tests/tools/test_definitions.py`
holds both to the same cases. Events arrive deduplicated by `item_id` (`sink.events`), and the
local sink never samples, so every item counts once (`itemCount` is 1).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tools.report.sink import Event

VERDICTS = frozenset({"success", "failure", "timeout", "error"})
FAILED = frozenset({"failure", "timeout", "error"})
HOUR = timedelta(hours=1)
# An approval wait lasts at most 30 days: every live job has an event inside this window.
LIVE_LOOKBACK = timedelta(days=30)
# A self-hosted job runs at most 5 days: a job ending in the range started at most this early.
LONGEST_JOB = timedelta(days=5)
TOP = 15


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0..100) of `values`; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return float(ordered[rank - 1])


def hour_of(moment: datetime) -> datetime:
    """The start of the hour holding `moment` (KQL's `bin(t, 1h)`)."""
    return moment.replace(minute=0, second=0, microsecond=0)


def labels_of(event: Event) -> list[str]:
    """The job's runner labels, empty ones left out."""
    return [label for label in event.prop("labels").split(",") if label]


@dataclass(frozen=True)
class Percentiles:
    """How many values, and their p50 and p95."""

    count: int
    p50_s: float
    p95_s: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        """The count and nearest-rank p50 / p95 of `values`."""
        return cls(len(values), percentile(values, 50), percentile(values, 95))


def runs_per_day(events: Iterable[Event]) -> dict[tuple[str, str], int]:
    """runs-per-day.kql: completed run attempts per (day, result)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for event in events:
        if event.name == "WorkflowRun":
            counts[(event.time.strftime("%Y-%m-%d"), event.prop("result"))] += 1
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class SuccessRate:
    """Attempts with a verdict, and the success rates (percent) of all and of first attempts."""

    attempts: int
    rate_all: float
    first_attempts: int
    rate_first: float | None


def success_rates(events: Iterable[Event], name: str = "WorkflowRun") -> dict[str, SuccessRate]:
    """success-rate-runs.kql (and -jobs with `name="WorkflowJob"`, keyed workflow · job).

    With no first attempt there is no first-attempt rate: None, never a division by zero.
    """
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for event in events:
        if event.name != name or event.prop("result") not in VERDICTS:
            continue
        key = (
            event.workflow
            if name == "WorkflowRun"
            else f"{event.workflow} · {event.prop('job_name')}"
        )
        success = event.prop("result") == "success"
        first = event.prop("run_attempt") == "1"
        tally = tallies[key]
        tally[0] += 1
        tally[1] += success
        tally[2] += first
        tally[3] += first and success
    return {
        key: SuccessRate(
            attempts,
            round(100.0 * successes / attempts, 1),
            firsts,
            round(100.0 * first_successes / firsts, 1) if firsts > 0 else None,
        )
        for key, (attempts, successes, firsts, first_successes) in sorted(tallies.items())
    }


def durations(events: Iterable[Event], name: str = "WorkflowRun") -> dict[str, Percentiles]:
    """run-duration.kql (and job-duration.kql with `name="WorkflowJob"`): p50 / p95 seconds."""
    values: dict[str, list[float]] = defaultdict(list)
    for event in events:
        duration = event.measure("duration_seconds")
        if event.name != name or event.prop("result") not in VERDICTS or duration is None:
            continue
        key = (
            event.workflow
            if name == "WorkflowRun"
            else f"{event.workflow} · {event.prop('job_name')}"
        )
        values[key].append(duration)
    return {key: Percentiles.of(found) for key, found in sorted(values.items())}


def queue_times(events: Iterable[Event]) -> dict[tuple[datetime, str], Percentiles]:
    """queue-time.kql: p50 / p95 queue seconds per (hour completed, label), skipped jobs out."""
    values: dict[tuple[datetime, str], list[float]] = defaultdict(list)
    for event in events:
        queue = event.measure("queue_seconds")
        if event.name != "WorkflowJob" or event.prop("result") == "skip" or queue is None:
            continue
        for label in labels_of(event):
            values[(hour_of(event.time), label)].append(queue)
    return {key: Percentiles.of(found) for key, found in sorted(values.items())}


@dataclass(frozen=True)
class Live:
    """Jobs of one label waiting for a runner, waiting for an approval, and running."""

    waiting_for_runner: int = 0
    waiting_for_approval: int = 0
    running: int = 0


LIFECYCLE = ("WorkflowJobQueued", "WorkflowJobWaiting", "WorkflowJobInProgress", "WorkflowJob")


def jobs_now(events: Iterable[Event], now: datetime) -> dict[str, Live]:
    """jobs-now.kql: per label, the jobs live at `now`, from events of the 30 days before it.

    Running: an InProgress event and no completion. Otherwise the latest of Queued and Waiting
    by `received_at` (they share the time `created_at`) says what the job waits for.
    """
    by_job: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.name in LIFECYCLE and now - LIVE_LOOKBACK < event.time <= now:
            by_job[event.prop("job_id")].append(event)
    states: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for job_events in by_job.values():
        names = {event.name for event in job_events}
        if "WorkflowJob" in names:
            continue
        latest = max(job_events, key=_received)
        if "WorkflowJobInProgress" in names:
            state = 2
        else:
            state = 1 if latest.name == "WorkflowJobWaiting" else 0
        for label in labels_of(latest):
            states[label][state] += 1
    return {label: Live(*counts) for label, counts in sorted(states.items())}


def _received(event: Event) -> datetime:
    """When the frontend received the event's delivery; its own time for older events."""
    try:
        return datetime.fromisoformat(event.prop("received_at"))
    except ValueError:
        return event.time


@dataclass(frozen=True)
class Busy:
    """Busy seconds in one hour under one label, the runners seen busy, and the utilization."""

    busy_s: float
    runners: int
    utilization: float


def utilization(
    events: Iterable[Event], start: datetime, end: datetime
) -> dict[tuple[datetime, str], Busy]:
    """utilization.kql: self-hosted busy time per (hour, label) between `start` and `end`.

    A running job is busy until `end`; the hour holding `end` counts only its elapsed part.
    """
    jobs: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if (
            event.name in ("WorkflowJob", "WorkflowJobInProgress")
            and event.prop("is_self_hosted") == "true"
            and start - LONGEST_JOB <= event.time <= end
        ):
            jobs[event.prop("job_id")].append(event)
    busy: dict[tuple[datetime, str], float] = defaultdict(float)
    runners: dict[tuple[datetime, str], set[str]] = defaultdict(set)
    for job_events in jobs.values():
        interval = _run_interval(job_events, end)
        if interval is None:
            continue
        job_start, job_end, job = interval
        if not job.prop("runner_name") or job_end <= job_start or job_end <= start:
            continue
        hour = hour_of(max(job_start, start))
        while hour <= job_end:
            hour_end = min(hour + HOUR, end)
            seconds = (min(job_end, hour_end) - max(job_start, hour)).total_seconds()
            if seconds > 0:
                for label in labels_of(job):
                    busy[(hour, label)] += seconds
                    runners[(hour, label)].add(job.prop("runner_name"))
            hour += HOUR
    figures: dict[tuple[datetime, str], Busy] = {}
    for key, seconds in sorted(busy.items()):
        elapsed_s = (min(key[0] + HOUR, end) - key[0]).total_seconds()
        count = len(runners[key])
        figures[key] = Busy(seconds, count, round(seconds / (count * elapsed_s), 3))
    return figures


def _run_interval(
    job_events: list[Event], end: datetime
) -> tuple[datetime, datetime, Event] | None:
    """A job's start and end: its completion's, else from its InProgress event until `end`."""
    for event in job_events:
        if event.name == "WorkflowJob":
            duration = event.measure("duration_seconds")
            if duration is None:
                return None
            return event.time - timedelta(seconds=duration), event.time, event
    started = min(job_events, key=lambda event: event.time)
    return started.time, end, started


@dataclass(frozen=True)
class Flaky:
    """Runs of a workflow, and how many failed then succeeded on a re-run."""

    runs: int
    flaky_runs: int


def flaky_workflows(events: Iterable[Event]) -> dict[str, Flaky]:
    """flaky-workflows.kql: workflows with runs that failed, then succeeded on a later attempt."""
    attempts: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for event in events:
        if event.name == "WorkflowRun":
            key = (event.workflow, event.prop("workflow_run_id"))
            attempts[key].append((int(event.prop("run_attempt") or 1), event.prop("result")))
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (workflow, _), found in attempts.items():
        failures = [attempt for attempt, result in found if result in FAILED]
        successes = [attempt for attempt, result in found if result == "success"]
        tallies[workflow][0] += 1
        tallies[workflow][1] += bool(failures and successes and max(successes) > min(failures))
    flaky = {key: Flaky(*tally) for key, tally in tallies.items() if tally[1] > 0}
    return dict(sorted(flaky.items(), key=lambda entry: (-entry[1].flaky_runs, entry[0])))


def slowest_steps(events: Iterable[Event]) -> dict[str, Percentiles]:
    """slowest-steps.kql: the 15 steps (workflow · job · step) with the highest p95 seconds."""
    values: dict[str, list[float]] = defaultdict(list)
    for event in events:
        duration = event.measure("duration_seconds")
        if event.name == "WorkflowStep" and duration is not None:
            key = f"{event.workflow} · {event.prop('job_name')} · {event.prop('step_name')}"
            values[key].append(duration)
    figures = {key: Percentiles.of(found) for key, found in values.items()}
    ranked = sorted(figures.items(), key=lambda entry: (-entry[1].p95_s, entry[0]))
    return dict(ranked[:TOP])


def failure_hotspots(events: Iterable[Event]) -> dict[str, int]:
    """failure-hotspots.kql: failed jobs and failed steps per workflow · job (· step), top 15."""
    counts: dict[str, int] = defaultdict(int)
    for event in events:
        if event.name not in ("WorkflowJob", "WorkflowStep") or event.prop("result") not in FAILED:
            continue
        key = f"{event.workflow} · {event.prop('job_name')}"
        if event.name == "WorkflowStep":
            key += f" · {event.prop('step_name')}"
        counts[key] += 1
    return dict(sorted(counts.items(), key=lambda entry: (-entry[1], entry[0]))[:TOP])


@dataclass(frozen=True)
class Lag:
    """Completions in one hour and their p95 delivery and processing lag, in seconds."""

    events: int
    p95_delivery_s: float
    p95_processing_s: float


def delivery_lag(events: Iterable[Event]) -> dict[datetime, Lag]:
    """delivery-lag.kql: per hour, p95 of delivery_lag_seconds and processing_lag_seconds."""
    delivery: dict[datetime, list[float]] = defaultdict(list)
    processing: dict[datetime, list[float]] = defaultdict(list)
    counts: dict[datetime, int] = defaultdict(int)
    for event in events:
        if event.name not in ("WorkflowRun", "WorkflowJob"):
            continue
        hour = hour_of(event.time)
        counts[hour] += 1
        for values, key in (
            (delivery, "delivery_lag_seconds"),
            (processing, "processing_lag_seconds"),
        ):
            value = event.measure(key)
            if value is not None:
                values[hour].append(value)
    return {
        hour: Lag(count, percentile(delivery[hour], 95), percentile(processing[hour], 95))
        for hour, count in sorted(counts.items())
    }
