"""A day of a made-up organization's GitHub Actions: the deliveries and what they add up to.

Runs with several jobs and steps, queued → in_progress → completed sequences, failures,
cancellations, a timed-out job, re-runs, self-hosted and hosted labels and realistic queue
times, reproducible from a seed. `tools.demo` sends it; its bookkeeping (`Expected`) is what
`make demo` checks the report against.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ORG = "octo-demo"
HOSTED = ("ubuntu-latest",)
WINDOWS = ("windows-latest",)
SELF_HOSTED = ("self-hosted", "linux", "x64")
GPU = ("self-hosted", "linux", "gpu")

# (repository, workflow, [(job name, labels, typical seconds)])
WORKFLOWS: tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...], int], ...]], ...] = (
    ("api", "CI", (("lint", HOSTED, 60), ("test", HOSTED, 420), ("build", SELF_HOSTED, 300))),
    ("api", "Deploy", (("package", SELF_HOSTED, 180), ("release", SELF_HOSTED, 240))),
    ("web", "CI", (("lint", HOSTED, 45), ("unit", HOSTED, 200), ("e2e", WINDOWS, 600))),
    ("ml", "Train", (("prepare", SELF_HOSTED, 120), ("train", GPU, 1500))),
)
STEP_NAMES = ("Set up job", "Run actions/checkout@v4", "Run make", "Post checkout", "Complete job")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery: when GitHub would send it, the event and its payload."""

    at: datetime
    event: str
    payload: dict[str, Any]


@dataclass
class Expected:
    """What the demo's own bookkeeping says the report must show."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Scenario:
    """The deliveries of the day, in time order, and what they should add up to."""

    deliveries: list[Delivery]
    expected: Expected
    run_ids: set[str]


class _DayBuilder:
    """Builds runs with jobs and steps, queue times, failures, cancellations and re-runs."""

    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.deliveries: list[Delivery] = []
        self.expected = Expected()
        self.run_ids: set[str] = set()
        self._ids = iter(range(seed * 1_000_000 + 1, seed * 1_000_000 + 900_000))

    def next_id(self) -> int:
        return next(self._ids)

    def repository(self, name: str) -> dict[str, Any]:
        repo_id = 500_000 + sum(ord(c) for c in name)
        owner = {"id": 42, "login": ORG, "type": "Organization"}
        return {"id": repo_id, "name": name, "full_name": f"{ORG}/{name}", "owner": owner}

    def emit(self, at: datetime, event: str, action: str, body: dict[str, Any], repo: str) -> None:
        payload = {
            "action": action,
            event: body,
            "repository": self.repository(repo),
            "organization": {"id": 42, "login": ORG},
            "sender": {"id": 7, "login": "demo-bot", "type": "Bot"},
        }
        self.deliveries.append(Delivery(at, event, json.loads(json.dumps(payload))))

    def build(self, runs: int) -> Scenario:
        for index in range(runs):
            repo, workflow, jobs = WORKFLOWS[index % len(WORKFLOWS)]
            created = self.start + timedelta(minutes=index * 9 + self.rng.randint(0, 5))
            outcome = self._pick_outcome(index)
            run_id = self.next_id()
            self.run_ids.add(str(run_id))
            finished = self.run(repo, workflow, jobs, run_id, 1, created, created, outcome)
            if outcome == "flaky":
                # Re-run of the same run two hours later: new attempt, new job ids, success.
                rerun_at = finished + timedelta(hours=2)
                self.run(repo, workflow, jobs, run_id, 2, created, rerun_at, "success")
        self.deliveries.sort(key=lambda d: d.at)
        return Scenario(self.deliveries, self.expected, self.run_ids)

    def _pick_outcome(self, index: int) -> str:
        table = ("success",) * 6 + ("failure", "flaky", "cancelled", "timed_out")
        return table[index % len(table)] if index >= 4 else "success"

    def run(
        self,
        repo: str,
        workflow: str,
        jobs: tuple[tuple[str, tuple[str, ...], int], ...],
        run_id: int,
        attempt: int,
        created: datetime,
        started: datetime,
        outcome: str,
    ) -> datetime:
        """Emit one run attempt with its jobs; return when it finished."""
        run = {
            "id": run_id,
            "name": workflow,
            "workflow_id": 9000 + sum(ord(c) for c in repo + workflow),
            "run_number": run_id % 10_000,
            "run_attempt": attempt,
            "event": "push",
            "head_branch": "main",
            "head_sha": hashlib.sha1(f"{run_id}".encode()).hexdigest(),
            "created_at": _iso(created),
            "run_started_at": _iso(started),
            "html_url": f"https://github.com/{ORG}/{repo}/actions/runs/{run_id}",
            "actor": {"id": 9, "login": "mona", "type": "User"},
            "triggering_actor": {"id": 9, "login": "mona", "type": "User"},
            "pull_requests": [],
            "repository": self.repository(repo),
        }
        self.emit(
            started, "workflow_run", "requested", self._run_state(run, started, "queued"), repo
        )
        self.emit(
            started + timedelta(seconds=3),
            "workflow_run",
            "in_progress",
            self._run_state(run, started + timedelta(seconds=3), "in_progress"),
            repo,
        )
        clock = started + timedelta(seconds=2)
        conclusions: list[str] = []
        failed = False
        for position, (name, labels, typical_s) in enumerate(jobs):
            job_outcome = "success"
            if failed:
                job_outcome = "skipped"
            elif outcome == "failure" and position == max(0, len(jobs) - 2):
                # A failure before the last job: the jobs after it are skipped.
                job_outcome = "failure"
            elif position == len(jobs) - 1 and outcome == "flaky":
                job_outcome = "failure"
            elif position == len(jobs) - 1 and outcome == "cancelled":
                job_outcome = "cancelled_queued"
            elif position == len(jobs) - 1 and outcome == "timed_out":
                job_outcome = "timed_out"
            clock = self.job(repo, workflow, run, name, labels, typical_s, clock, job_outcome)
            conclusions.append(job_outcome)
            failed = failed or job_outcome != "success"
        conclusion = {
            "failure": "failure",
            "flaky": "failure",
            "cancelled": "cancelled",
            "timed_out": "failure",
        }.get(outcome, "success")
        if attempt == 2:
            conclusion = "success"
        finished = clock + timedelta(seconds=4)
        done = self._run_state(run, finished, "completed")
        done["conclusion"] = conclusion
        self.emit(finished, "workflow_run", "completed", done, repo)
        self.expected.runs.append(
            {
                "workflow": f"{ORG}/{repo} {workflow}",
                "run_id": str(run_id),
                "attempt": attempt,
                "conclusion": conclusion,
                "duration_s": (finished - started).total_seconds(),
            }
        )
        return finished

    def _run_state(self, run: dict[str, Any], at: datetime, status: str) -> dict[str, Any]:
        state = dict(run)
        state.update({"status": status, "conclusion": None, "updated_at": _iso(at)})
        return state

    def job(
        self,
        repo: str,
        workflow: str,
        run: dict[str, Any],
        name: str,
        labels: tuple[str, ...],
        typical_s: int,
        queued_at: datetime,
        outcome: str,
    ) -> datetime:
        """Emit one job's queued, in_progress and completed deliveries; return its end."""
        job_id = self.next_id()
        self_hosted = "self-hosted" in labels
        queue_s = self.rng.randint(30, 400) if self_hosted else self.rng.randint(2, 40)
        runner = f"{'gpu' if 'gpu' in labels else 'build'}-{self.rng.randint(1, 3)}"
        if not self_hosted:
            runner = f"GitHub Actions {self.rng.randint(100, 999)}"
        job: dict[str, Any] = {
            "id": job_id,
            "run_id": run["id"],
            "run_attempt": run["run_attempt"],
            "workflow_name": workflow,
            "name": name,
            "head_branch": run["head_branch"],
            "head_sha": run["head_sha"],
            "created_at": _iso(queued_at),
            "started_at": _iso(queued_at),
            "completed_at": None,
            "html_url": f"{run['html_url']}/job/{job_id}",
            "labels": list(labels),
            "status": "queued",
            "conclusion": None,
            "steps": [],
            "runner_id": None,
            "runner_name": None,
            "runner_group_id": None,
            "runner_group_name": None,
        }
        self.emit(queued_at, "workflow_job", "queued", dict(job), repo)
        if outcome in {"skipped", "cancelled_queued"}:
            # Never reached a runner: completed straight from the queue.
            ended = queued_at + (
                timedelta(seconds=queue_s) if outcome == "cancelled_queued" else timedelta()
            )
            job.update(
                status="completed",
                conclusion="skipped" if outcome == "skipped" else "cancelled",
                completed_at=_iso(ended),
            )
            self.emit(ended, "workflow_job", "completed", dict(job), repo)
            self._expect_job(repo, workflow, job, labels, (ended - queued_at).total_seconds(), 0)
            return ended
        started = queued_at + timedelta(seconds=queue_s)
        group = "self-hosted" if self_hosted else "GitHub Actions"
        job.update(
            status="in_progress",
            started_at=_iso(started),
            runner_id=self.rng.randint(1, 50),
            runner_name=runner,
            runner_group_id=2 if self_hosted else 1,
            runner_group_name=group,
        )
        self.emit(started, "workflow_job", "in_progress", dict(job), repo)
        run_s = max(5, int(typical_s * self.rng.uniform(0.7, 1.4)))
        if outcome == "timed_out":
            run_s = typical_s * 3
        ended = started + timedelta(seconds=run_s)
        job.update(
            status="completed",
            conclusion=outcome,
            completed_at=_iso(ended),
            steps=self._steps(started, ended, outcome),
        )
        self.emit(ended, "workflow_job", "completed", dict(job), repo)
        self._expect_job(repo, workflow, job, labels, float(queue_s), float(run_s))
        return ended

    def _steps(self, started: datetime, ended: datetime, outcome: str) -> list[dict[str, Any]]:
        total = (ended - started).total_seconds()
        cuts = [0.0, 0.03, 0.08, 0.95, 0.98, 1.0]
        steps = []
        for number, name in enumerate(STEP_NAMES, start=1):
            begin = started + timedelta(seconds=round(total * cuts[number - 1]))
            end = started + timedelta(seconds=round(total * cuts[number]))
            conclusion = "success"
            if name == "Run make" and outcome != "success":
                conclusion = "failure" if outcome == "failure" else "cancelled"
            steps.append(
                {
                    "name": name,
                    "number": number,
                    "status": "completed",
                    "conclusion": conclusion,
                    "started_at": _iso(begin),
                    "completed_at": _iso(end),
                }
            )
        return steps

    def _expect_job(
        self,
        repo: str,
        workflow: str,
        job: dict[str, Any],
        labels: tuple[str, ...],
        queue_s: float,
        duration_s: float,
    ) -> None:
        self.expected.jobs.append(
            {
                "workflow": f"{ORG}/{repo} {workflow}",
                "job_id": str(job["id"]),
                "conclusion": job["conclusion"],
                "labels": ",".join(labels),
                "runner": job["runner_name"] or "",
                "group": job["runner_group_name"] or "",
                "queue_s": queue_s,
                "duration_s": duration_s,
            }
        )


def build_scenario(seed: int, runs: int = 40, now: datetime | None = None) -> Scenario:
    """The demo day: `runs` workflow runs ending around `now`, reproducible from `seed`."""
    end = now or datetime.now(UTC)
    start = (end - timedelta(minutes=runs * 9 + 240)).replace(microsecond=0)
    return _DayBuilder(seed, start).build(runs)
