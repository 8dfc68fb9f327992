"""The text report: workflows, queue times and busy time, checked against the demo's books.

- Runs: completed `WorkflowRun` events (every attempt counts), each `item_id` once.
- Success rate: runs whose `result` is `success` over runs that reached a verdict (`success`,
  `failure`, `timeout`, `error`); cancelled and skipped runs are left out of both.
- Duration p50/p95: nearest-rank percentiles of `duration_seconds` (this attempt) of the runs
  that reached a verdict.
- Queue time p50/p95 per label: `queue_seconds` of completed `WorkflowJob` events that were not
  skipped; a job counts once under each of its labels.
- Runner busy time: the sum of `duration_seconds` of completed jobs per `runner_group_name`, and
  per `runner_name` for self-hosted runners (GitHub-hosted runners are new for every job).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.telemetry.results import result_of
from tools.report.definitions import VERDICTS, percentile
from tools.report.sink import events


@dataclass(frozen=True)
class WorkflowFigures:
    """One workflow's runs, success rate and duration percentiles."""

    runs: int
    success_rate: float | None
    p50_s: float
    p95_s: float


@dataclass(frozen=True)
class QueueFigures:
    """Queue time percentiles of one runner label."""

    jobs: int
    p50_s: float
    p95_s: float


@dataclass
class Summary:
    """Everything the report prints."""

    workflows: dict[str, WorkflowFigures] = field(default_factory=dict)
    queues: dict[str, QueueFigures] = field(default_factory=dict)
    group_busy_s: dict[str, float] = field(default_factory=dict)
    runner_busy_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFact:
    """The fields of a completed run the summary needs."""

    workflow: str
    result: str
    duration_s: float


@dataclass(frozen=True)
class JobFact:
    """The fields of a completed job the summary needs."""

    labels: str
    runner: str
    result: str
    queue_s: float
    duration_s: float
    group: str = ""
    self_hosted: bool = False


def summarize(runs: Iterable[RunFact], jobs: Iterable[JobFact]) -> Summary:
    """Compute the summary from run and job facts."""
    summary = Summary()
    by_workflow: dict[str, list[RunFact]] = defaultdict(list)
    for run in runs:
        by_workflow[run.workflow].append(run)
    for workflow, facts in sorted(by_workflow.items()):
        decided = [fact for fact in facts if fact.result in VERDICTS]
        successes = sum(1 for fact in decided if fact.result == "success")
        durations = [fact.duration_s for fact in decided]
        summary.workflows[workflow] = WorkflowFigures(
            runs=len(facts),
            success_rate=successes / len(decided) if decided else None,
            p50_s=percentile(durations, 50),
            p95_s=percentile(durations, 95),
        )
    queue_times: dict[str, list[float]] = defaultdict(list)
    busy: dict[str, float] = defaultdict(float)
    group_busy: dict[str, float] = defaultdict(float)
    for job in jobs:
        if job.result != "skip":
            for label in filter(None, job.labels.split(",")):
                queue_times[label].append(job.queue_s)
        if job.group:
            group_busy[job.group] += job.duration_s
        if job.runner and job.self_hosted:
            busy[job.runner] += job.duration_s
    for labels, values in sorted(queue_times.items()):
        summary.queues[labels] = QueueFigures(
            len(values), percentile(values, 50), percentile(values, 95)
        )
    summary.group_busy_s = dict(sorted(group_busy.items()))
    summary.runner_busy_s = dict(sorted(busy.items()))
    return summary


def summarize_items(items: Iterable[Mapping[str, Any]]) -> Summary:
    """Summarize sink items (one JSON object per line), each `item_id` counted once."""
    runs: list[RunFact] = []
    jobs: list[JobFact] = []
    for event in events(items):
        if event.name == "WorkflowRun":
            runs.append(
                RunFact(
                    event.workflow,
                    event.prop("result"),
                    event.measure("duration_seconds") or 0.0,
                )
            )
        elif event.name == "WorkflowJob":
            jobs.append(
                JobFact(
                    labels=event.prop("labels"),
                    runner=event.prop("runner_name"),
                    result=event.prop("result"),
                    queue_s=event.measure("queue_seconds") or 0.0,
                    duration_s=event.measure("duration_seconds") or 0.0,
                    group=event.prop("runner_group_name"),
                    self_hosted=event.prop("is_self_hosted") == "true",
                )
            )
    return summarize(runs, jobs)


def summarize_expected(expected: Any) -> Summary:
    """Summarize the demo's own bookkeeping (`tools.demo_day.Expected`) with the same rules."""
    runs = [
        RunFact(run["workflow"], result_of(run["conclusion"]), run["duration_s"])
        for run in expected.runs
    ]
    jobs = [
        JobFact(
            job["labels"],
            job["runner"],
            result_of(job["conclusion"]),
            job["queue_s"],
            job["duration_s"],
            job["group"],
            "self-hosted" in job["labels"].split(","),
        )
        for job in expected.jobs
    ]
    return summarize(runs, jobs)


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def format_report(actual: Summary, expected: Summary | None = None) -> str:
    """Render the summary as text tables; with `expected`, flag every figure that differs."""
    lines: list[str] = []

    def mark(same: bool) -> str:
        return "" if expected is None else ("  ok" if same else "  MISMATCH")

    lines.append("Workflows (completed runs, all attempts)")
    lines.append(f"  {'workflow':<28} {'runs':>5} {'success':>8} {'p50 s':>8} {'p95 s':>8}")
    for workflow, figures in actual.workflows.items():
        want = expected.workflows.get(workflow) if expected else None
        lines.append(
            f"  {workflow:<28} {figures.runs:>5} {_rate(figures.success_rate):>8} "
            f"{figures.p50_s:>8.0f} {figures.p95_s:>8.0f}{mark(want == figures)}"
        )
    lines.append("")
    lines.append("Queue time per runner label (jobs not skipped)")
    lines.append(f"  {'label':<28} {'jobs':>5} {'p50 s':>8} {'p95 s':>8}")
    for labels, queue in actual.queues.items():
        want_queue = expected.queues.get(labels) if expected else None
        lines.append(
            f"  {labels:<28} {queue.jobs:>5} {queue.p50_s:>8.0f} {queue.p95_s:>8.0f}"
            f"{mark(want_queue == queue)}"
        )
    lines.append("")
    lines.append("Runner busy time per runner group")
    for group, seconds in actual.group_busy_s.items():
        want_group = expected.group_busy_s.get(group) if expected else None
        lines.append(f"  {group:<28} {seconds / 60:>8.1f} min{mark(want_group == seconds)}")
    lines.append("")
    lines.append("Runner busy time per self-hosted runner")
    for runner, seconds in actual.runner_busy_s.items():
        want_busy = expected.runner_busy_s.get(runner) if expected else None
        lines.append(f"  {runner:<28} {seconds / 60:>8.1f} min{mark(want_busy == seconds)}")
    if expected is not None:
        verdict = "matches" if expected == actual else "DOES NOT match"
        lines.append("")
        lines.append(f"The summary {verdict} what was sent.")
    return "\n".join(lines)
