"""`backfill` against the REST stand-in: windows, attempts, jobs, envelopes, and counting once."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.github.envelopes import delivery_id
from backend.github.history import Backfill, Progress
from backend.github.settings import GitHubSettings
from backend.github.windows import parse_date
from backend.idempotency import LedgerSettings
from backend.idempotency.records import InMemoryRecords
from backend.processor import Processor
from backend.shutdown import Stopper
from backend.sinks.memory import RecordingSink
from backend.worker import Worker
from common.envelope import Envelope, decode_message
from common.memory_queue import InMemoryQueue
from common.reduction import reduce_payload
from tests.backend.conftest import CONFIG
from tests.backend.fakes import FakeTime, message_text
from tests.github.conftest import REPO, client
from tests.github.standin import Fault, Running
from tools.payloads import (
    JOB_ID,
    RUN_ID,
    completed_steps,
    step,
    workflow_job_payload,
    workflow_run_payload,
)

SINCE = parse_date("2024-03-05")
UNTIL = parse_date("2024-03-06")
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def add_run(github: Running, run_id: int, created_at: str, attempts: int = 1) -> None:
    """A completed run with `attempts` attempts, one job per attempt (job ids are per attempt)."""
    for number in range(1, attempts + 1):
        run = workflow_run_payload(
            "completed", id=run_id, run_attempt=number, created_at=created_at
        )
        github.state.attempts[(run_id, number)] = run["workflow_run"]
        job = workflow_job_payload(
            "completed", id=run_id * 10 + number, run_id=run_id, run_attempt=number
        )["workflow_job"]
        github.state.jobs[(run_id, number)] = [job]
    github.state.runs.append(github.state.attempts[(run_id, attempts)])


def backfill(
    settings: GitHubSettings,
    records: InMemoryRecords,
    queue: InMemoryQueue | None,
    workflow: str | None = None,
) -> Backfill:
    progress = Progress(io.StringIO())
    api = client(settings)
    return Backfill(api, REPO, records, queue, NOW, workflow=workflow, progress=progress)


def envelopes(queue: InMemoryQueue) -> list[Envelope]:
    found: list[Envelope] = []
    for message in queue.receive(32, 60):
        found += decode_message(message.content)
    while batch := queue.receive(32, 60):
        for message in batch:
            found += decode_message(message.content)
    return found


def test_a_window_over_1000_runs_is_split_until_each_lists_fewer(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    start = datetime(2024, 3, 5, tzinfo=UTC)
    for number in range(1200):
        created = (start + timedelta(seconds=60 * number)).strftime("%Y-%m-%dT%H:%M:%SZ")
        add_run(github, 5_000_000 + number, created)

    tally = backfill(settings, records, None).run(SINCE, UNTIL)

    assert (tally.windows, tally.runs, tally.attempts) == (1, 1200, 1200)
    assert tally.calls_ahead == 2400  # the attempt and a page of its jobs, per attempt
    counts = [q for m, q in github.state.requests if q.endswith("/actions/runs")]
    assert len(counts) > 13  # the counts of the day and its halves, and the pages of each half


def test_every_attempt_of_a_rerun_is_enqueued_with_its_jobs_and_steps(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z", attempts=2)
    github.state.jobs[(RUN_ID, 2)][0]["steps"] = [
        *completed_steps(),
        step(5, "Upload", "2024-03-05T10:02:30Z", "2024-03-05T10:02:39Z"),
    ]
    queue = InMemoryQueue()

    tally = backfill(settings, records, queue).run(SINCE, UNTIL)

    found = envelopes(queue)
    keys = sorted(
        (e.event, e.payload[e.event]["id"], e.payload[e.event]["run_attempt"]) for e in found
    )
    assert keys == [
        ("workflow_job", RUN_ID * 10 + 1, 1),
        ("workflow_job", RUN_ID * 10 + 2, 2),
        ("workflow_run", RUN_ID, 1),
        ("workflow_run", RUN_ID, 2),
    ]
    job = next(
        e
        for e in found
        if e.event == "workflow_job" and e.payload["workflow_job"]["run_attempt"] == 2
    )
    assert [s["name"] for s in job.payload["workflow_job"]["steps"]][-1] == "Upload"
    assert (tally.runs, tally.attempts, tally.jobs, tally.envelopes) == (1, 2, 2, 4)
    attempts = [p for _m, p in github.state.requests if "/attempts/" in p]
    assert len(attempts) == 4  # each attempt, and its jobs


def _without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in keys}


def test_envelopes_keep_what_a_live_delivery_keeps(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z")
    github.state.jobs[(RUN_ID, 1)][0]["id"] = JOB_ID
    queue = InMemoryQueue()

    backfill(settings, records, queue).run(SINCE, UNTIL)

    by_event = {e.event: e for e in envelopes(queue)}
    live_run = reduce_payload("workflow_run", workflow_run_payload("completed", id=RUN_ID))
    live_job = reduce_payload("workflow_job", workflow_job_payload("completed"))
    run, job = by_event["workflow_run"], by_event["workflow_job"]
    # The sender of a live delivery is whoever GitHub names; the backfill names the run's actor.
    assert _without(run.payload, "sender") == _without(live_run, "sender")
    assert _without(job.payload, "sender") == _without(live_job, "sender")
    assert run.delivery_id == delivery_id(f"workflow_run:{RUN_ID}:1:completed")
    assert (job.action, job.received_at) == ("completed", NOW)


def test_a_backfill_then_a_live_delivery_of_one_of_its_jobs_is_counted_once(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z")
    github.state.jobs[(RUN_ID, 1)][0]["id"] = JOB_ID
    stopper = Stopper()
    fake_time = FakeTime(stopper)
    queue = InMemoryQueue(clock=fake_time.clock)
    sink = RecordingSink()
    processor = Processor(
        sink,
        5,
        ledger=records.ledger,
        ledger_settings=LedgerSettings(),
        owner="worker",
        now=lambda: NOW,
    )
    worker = Worker(queue, processor, CONFIG, stopper, fake_time.clock, fake_time.sleep)

    backfill(settings, records, queue).run(SINCE, UNTIL)
    worker.work(burst=True)
    queue.send(message_text(workflow_job_payload("completed"), delivery_id="live-1"))
    worker.work(burst=True)

    jobs = [item for item in sink.items if item.name == "WorkflowJob"]
    assert len(jobs) == 1 and jobs[0].properties["job_id"] == str(JOB_ID)
    assert sink.names.count("WorkflowRun") == 1
    assert len(queue) == 0


def test_a_finished_window_is_skipped_on_the_next_run(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z")
    first_queue, second_queue = InMemoryQueue(), InMemoryQueue()
    backfill(settings, records, first_queue).run(SINCE, UNTIL)
    github.state.requests.clear()

    tally = backfill(settings, records, second_queue).run(SINCE, UNTIL)

    assert (tally.skipped_windows, tally.envelopes, len(second_queue)) == (1, 0, 0)
    assert [p for _m, p in github.state.requests] == [f"/repos/{REPO.owner}/{REPO.name}"]


def test_one_workflow_lists_through_its_own_endpoint(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z")

    tally = backfill(settings, records, None, workflow="build.yml").run(SINCE, UNTIL)

    assert tally.runs == 1
    assert any("/actions/workflows/build.yml/runs" in p for _m, p in github.state.requests)


def test_a_429_secondary_limit_is_retried_after_its_retry_after(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add_run(github, RUN_ID, "2024-03-05T10:00:00Z")
    path = rf"/repos/{REPO.owner}/{REPO.name}/actions/runs/{RUN_ID}/attempts/1"
    limited = {"message": "You have exceeded a secondary rate limit."}
    github.state.faults.append(Fault("GET", path, 429, limited, {"retry-after": "1"}))
    queue = InMemoryQueue()

    tally = backfill(settings, records, queue).run(SINCE, UNTIL)

    assert tally.envelopes == 2
    assert [p for _m, p in github.state.requests].count(path) == 2
