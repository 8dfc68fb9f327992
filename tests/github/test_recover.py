"""`recover` against the REST stand-in: which guids are redelivered, given up, or left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.github.client import RateBudget, connect
from backend.github.hooks import RestHook
from backend.github.recovery import MAX_REDELIVERIES, Pacer, Recovery
from backend.github.settings import GitHubSettings
from backend.idempotency.ledger import done_entry
from backend.idempotency.records import InMemoryRecords, Redelivery
from tests.github.conftest import REPO, client
from tests.github.standin import Fault, Running
from tools.payloads import JOB_ID, RUN_ID, workflow_job_payload, workflow_run_payload

NOW = datetime.now(UTC).replace(microsecond=0)
HOOK_ID = 470102145
HOOK = f"/repos/{REPO.owner}/{REPO.name}/hooks/{HOOK_ID}/deliveries"


def attempt(
    delivery_id: int, guid: str, status_code: int, minutes_ago: float, event: str = "workflow_job"
) -> dict[str, Any]:
    """One item of the deliveries list, as GitHub documents it."""
    return {
        "id": delivery_id,
        "guid": guid,
        "delivered_at": (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z"),
        "redelivery": False,
        "duration": 0.27,
        "status": "OK" if status_code < 300 else f"Invalid HTTP Response: {status_code}",
        "status_code": status_code,
        "event": event,
        "action": "completed",
        "installation_id": None,
        "repository_id": 186853002,
        "throttled_at": None,
    }


def recovery(settings: GitHubSettings, records: InMemoryRecords, dry_run: bool = False) -> Recovery:
    hook = RestHook(client(settings), REPO, HOOK_ID)
    return Recovery(hook, records, Pacer(settings.redelivery_interval_s), NOW, dry_run)


def add(github: Running, item: dict[str, Any], payload: dict[str, Any] | None = None) -> None:
    """Put an attempt first in the log (the newest), with the payload GitHub stored."""
    github.state.deliveries.insert(0, item)
    if payload is not None:
        github.state.payloads[item["id"]] = payload


def test_every_page_is_followed_through_the_link_cursor(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    for number in range(250):
        add(github, attempt(1000 + number, f"guid-{number}", 200, minutes_ago=250 - number))

    summary = recovery(settings, records).run()

    lists = [path for method, path in github.state.requests if path == HOOK]
    assert len(lists) == 3  # 100 + 100 + 50, the second and third through `cursor`
    assert (summary.seen, summary.failed, github.state.posts()) == (250, 0, [])


def test_only_failed_unexported_workflow_events_are_redelivered(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    job = workflow_job_payload("completed")
    add(github, attempt(1, "ok", 200, 60))
    add(github, attempt(2, "healed", 503, 50), job)
    add(github, attempt(3, "healed", 202, 40))  # a redelivery that succeeded
    add(github, attempt(4, "lost", 503, 30), workflow_run_payload("completed"))
    add(github, attempt(5, "exported", 504, 20), job)
    add(github, attempt(6, "push", 503, 10, event="push"))
    records.ledger.entries[f"workflow_job:{JOB_ID}:completed"] = done_entry("worker", NOW)

    summary = recovery(settings, records).run()

    assert github.state.posts() == [f"{HOOK}/4/attempts"]
    # "healed" failed first but a redelivery succeeded: not failed, not redelivered again.
    assert (summary.seen, summary.failed, summary.exported, summary.redelivered) == (4, 2, 1, 1)
    assert summary.given_up == [] and summary.ok
    assert records.redelivery(f"repo:{REPO.owner}/{REPO.name}:hook:{HOOK_ID}:lost") == Redelivery(
        1, 4
    )


def test_a_lifecycle_event_whose_completion_was_exported_is_left_alone(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(7, "late", 503, 5), workflow_job_payload("in_progress"))
    records.ledger.entries[f"workflow_job:{JOB_ID}:completed"] = done_entry("worker", NOW)

    summary = recovery(settings, records).run()

    assert (summary.exported, github.state.posts()) == (1, [])


def test_recover_run_twice_posts_once_per_guid(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(10, "lost", 503, 30), workflow_run_payload("completed"))

    first = recovery(settings, records).run()
    second = recovery(settings, records).run()

    assert github.state.posts() == [f"{HOOK}/10/attempts"]
    assert (first.redelivered, second.redelivered, second.pending) == (1, 0, 1)


def test_a_guid_is_given_up_after_three_failed_redeliveries(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(20, "doomed", 503, 30), workflow_run_payload("completed"))
    ids = iter(range(21, 30))

    def redelivery_fails(delivery_id: int) -> None:
        # GitHub makes the attempt at once; our endpoint answers 503 again.
        add(github, attempt(next(ids), "doomed", 503, 0))

    github.state.on_redeliver = redelivery_fails
    summaries = [recovery(settings, records).run() for _ in range(MAX_REDELIVERIES + 1)]

    assert len(github.state.posts()) == MAX_REDELIVERIES
    assert [len(s.given_up) for s in summaries] == [0, 0, 0, 1]
    assert summaries[-1].given_up == ["doomed"]
    assert "given up 1" in summaries[-1].line()


def test_a_spammed_endpoint_422_is_reported_and_the_checkpoint_stays(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(30, "spam", 503, 30), workflow_run_payload("completed"))
    message = {"message": "Validation failed, or the endpoint has been spammed."}
    github.state.faults.append(Fault("POST", rf"{HOOK}/30/attempts", 422, message))

    run = recovery(settings, records)
    summary = run.run()

    assert (summary.refused, summary.ok, summary.redelivered) == (["spam"], False, 0)
    assert records.checkpoint(run.checkpoint_name) is None
    assert "refused by GitHub 1" in summary.line()


def test_the_checkpoint_bounds_the_next_listing(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    for number in range(150):
        add(github, attempt(100 + number, f"old-{number}", 200, minutes_ago=300 - number))
    recovery(settings, records).run()
    add(github, attempt(900, "new", 200, 1))
    github.state.requests.clear()

    summary = recovery(settings, records).run()

    # Only the first page: it already reaches the checkpoint (the newest attempt seen before).
    assert [path for _m, path in github.state.requests] == [HOOK]
    assert summary.seen == 2  # the new one, and the one at the checkpoint, listed again


def test_deliveries_older_than_three_days_are_not_listed_further(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(40, "ancient", 503, minutes_ago=73 * 60), workflow_run_payload())
    add(github, attempt(41, "recent", 200, minutes_ago=10))

    summary = recovery(settings, records).run()

    assert (summary.seen, github.state.posts()) == (1, [])


def test_a_dry_run_posts_nothing_and_keeps_no_checkpoint(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(50, "lost", 503, 30), workflow_run_payload(run_id=RUN_ID))

    run = recovery(settings, records, dry_run=True)
    summary = run.run()

    assert (summary.redelivered, github.state.posts()) == (1, [])
    assert records.checkpoint(run.checkpoint_name) is None
    assert summary.line(dry_run=True).startswith("seen 1, failed 1, already exported 0, would")


def test_a_secondary_limit_is_waited_out_with_retry_after(
    github: Running, settings: GitHubSettings, records: InMemoryRecords
) -> None:
    add(github, attempt(60, "ok", 200, 30))
    limited = {"message": "You have exceeded a secondary rate limit."}
    github.state.faults.append(Fault("GET", HOOK, 403, limited, {"retry-after": "1"}))
    budget = RateBudget(reserve=0)
    hook = RestHook(connect(settings, REPO, budget), REPO, HOOK_ID)

    started = datetime.now(UTC)
    summary = Recovery(hook, records, Pacer(0), NOW).run()

    assert summary.seen == 1
    assert datetime.now(UTC) - started >= timedelta(seconds=1)
    assert [path for _m, path in github.state.requests] == [HOOK, HOOK]
    assert budget.calls == 2 and budget.remaining is not None


def test_posts_are_paced_apart() -> None:
    moments: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(1.0, sleep=sleep, clock=lambda: now[0])
    for _ in range(3):
        pacer.wait()
        moments.append(now[0])
        now[0] += 0.25  # the POST itself

    assert moments == [0.0, 1.0, 2.0]
