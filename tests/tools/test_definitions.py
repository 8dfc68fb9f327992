"""The dashboard's definitions on crafted events: the cases issue 14 found the queries got wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tools.report import definitions as d
from tools.report.sink import Event, events

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def line(name: str, at: datetime, item_id: str, **properties: Any) -> dict[str, Any]:
    """A sink line; `measurements` given as a property are moved to measurements."""
    measurements = properties.pop("measurements", {})
    return {
        "name": name,
        "time": at.isoformat(),
        "properties": {"event_time": at.isoformat(), "item_id": item_id, **properties},
        "measurements": measurements,
    }


def run(
    item_id: str, result: str, attempt: int = 1, run_id: str = "1", **extra: Any
) -> dict[str, Any]:
    return line(
        "WorkflowRun",
        T0,
        item_id,
        repository_full_name="o/r",
        workflow_name="CI",
        result=result,
        run_attempt=str(attempt),
        workflow_run_id=run_id,
        measurements={"duration_seconds": 60.0},
        **extra,
    )


def lifecycle(name: str, at: datetime, received: datetime, job: str = "7") -> dict[str, Any]:
    return line(
        name,
        at,
        f"{name}-{job}",
        job_id=job,
        labels="self-hosted,linux",
        received_at=received.isoformat(),
        runner_name="b1" if "Progress" in name else "",
        is_self_hosted="true",
    )


def test_a_tie_in_time_is_broken_by_receipt_order() -> None:
    # Given a job that waited for approval and was then queued, both at `created_at`, with
    # the Queued line first in the file
    waited = lifecycle("WorkflowJobWaiting", T0, received=T0 + timedelta(seconds=1))
    queued = lifecycle("WorkflowJobQueued", T0, received=T0 + timedelta(minutes=20))
    # When "now" is computed, in either file order
    for order in ([queued, waited], [waited, queued]):
        live = d.jobs_now(events(order), T0 + timedelta(minutes=30))
        # Then the job waits for a runner: the later receipt wins, not the file order
        assert live["linux"] == d.Live(waiting_for_runner=1)


def test_a_job_waiting_for_approval_for_29_days_is_still_live() -> None:
    waited = lifecycle("WorkflowJobWaiting", T0, received=T0)

    assert d.jobs_now(events([waited]), T0 + timedelta(days=29))["linux"] == d.Live(
        waiting_for_approval=1
    )
    assert d.jobs_now(events([waited]), T0 + timedelta(days=31)) == {}


def test_running_and_finished_jobs() -> None:
    started = T0 + timedelta(minutes=5)
    lines = [
        lifecycle("WorkflowJobQueued", T0, received=T0),
        lifecycle("WorkflowJobInProgress", started, received=started),
        lifecycle("WorkflowJobQueued", T0, received=T0, job="8"),
        line("WorkflowJob", started, "done-8", job_id="8", labels="self-hosted,linux"),
    ]

    assert d.jobs_now(events(lines), T0 + timedelta(minutes=10)) == {
        "linux": d.Live(running=1),
        "self-hosted": d.Live(running=1),
    }


def test_a_workflow_with_no_first_attempts_has_no_first_attempt_rate() -> None:
    lines = [run("a", "success", attempt=2), run("b", "failure", attempt=3)]

    rate = d.success_rates(events(lines))["o/r CI"]

    assert rate == d.SuccessRate(attempts=2, rate_all=50.0, first_attempts=0, rate_first=None)


def test_a_duplicated_item_counts_once_everywhere() -> None:
    lines = [run("a", "success"), run("b", "failure"), run("a", "success")]
    deduplicated = events(lines)

    assert d.runs_per_day(deduplicated) == {
        ("2026-03-02", "failure"): 1,
        ("2026-03-02", "success"): 1,
    }
    assert d.success_rates(deduplicated)["o/r CI"].attempts == 2
    assert d.durations(deduplicated)["o/r CI"].count == 2


def test_the_copy_sent_last_is_kept() -> None:
    first = run("a", "success")
    later = {**run("a", "success"), "time": (T0 + timedelta(hours=50)).isoformat()}

    (kept,) = events([later, first])

    assert kept.sent == T0 + timedelta(hours=50) and kept.time == T0


def test_a_partial_hour_with_a_running_job_is_busy_over_its_elapsed_part() -> None:
    # Given a runner that finished a 15-minute job at 10:15 and started another at 10:20,
    # still running at 10:30
    lines = [
        line(
            "WorkflowJob",
            T0 + timedelta(minutes=15),
            "done",
            job_id="1",
            runner_name="b1",
            labels="self-hosted,linux",
            is_self_hosted="true",
            measurements={"duration_seconds": 900.0},
        ),
        lifecycle("WorkflowJobInProgress", T0 + timedelta(minutes=20), T0, job="2"),
    ]
    now = T0 + timedelta(minutes=30)

    busy = d.utilization(events(lines), T0 - timedelta(hours=1), now)

    # Then 25 busy minutes over 30 elapsed: not 15 over 60
    assert busy[(T0, "linux")] == d.Busy(busy_s=1500.0, runners=1, utilization=0.833)


def test_a_job_across_hours_is_split_and_full_hours_divide_by_3600() -> None:
    lines = [
        line(
            "WorkflowJob",
            T0 + timedelta(minutes=30),
            "j",
            job_id="1",
            runner_name="b1",
            labels="gpu",
            is_self_hosted="true",
            measurements={"duration_seconds": 3600.0},
        ),
    ]

    busy = d.utilization(events(lines), T0 - timedelta(hours=2), T0 + timedelta(hours=3))

    assert busy == {
        (T0 - timedelta(hours=1), "gpu"): d.Busy(1800.0, 1, 0.5),
        (T0, "gpu"): d.Busy(1800.0, 1, 0.5),
    }


def test_flaky_means_failed_then_succeeded_on_a_later_attempt() -> None:
    lines = [
        run("a1", "failure", 1, run_id="1"),
        run("a2", "success", 2, run_id="1"),
        run("b1", "success", 1, run_id="2"),
        run("b2", "failure", 2, run_id="2"),
    ]

    assert d.flaky_workflows(events(lines)) == {"o/r CI": d.Flaky(runs=2, flaky_runs=1)}


@pytest.mark.parametrize(("share", "expected"), [(50, 3.0), (95, 5.0), (0, 1.0), (100, 5.0)])
def test_percentile_is_nearest_rank(share: float, expected: float) -> None:
    assert d.percentile([5, 1, 4, 2, 3], share) == expected


def test_an_event_is_never_counted_from_its_sent_time() -> None:
    late = line("WorkflowRun", T0, "a", result="success")
    late["time"] = (T0 + timedelta(days=3)).isoformat()

    assert d.runs_per_day(events([late])) == {("2026-03-02", "success"): 1}


def test_events_read_as_an_event_type() -> None:
    (event,) = events([run("a", "success")])

    assert isinstance(event, Event) and event.workflow == "o/r CI"
