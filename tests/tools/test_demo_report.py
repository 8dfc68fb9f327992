"""The demo day and the sink report: the pipeline's mapping must reproduce the demo's books."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.tools.demo_sink import sink_lines
from tools.demo_day import build_scenario
from tools.report import (
    JobFact,
    RunFact,
    format_report,
    percentile,
    read_items,
    span,
    summarize,
    summarize_expected,
    summarize_items,
)
from tools.report.__main__ import main

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def _sink_lines(seed: int, runs: int) -> list[dict[str, Any]]:
    """What the JSONL sink would hold after the backend mapped every demo delivery."""
    return sink_lines(seed, runs, NOW)


@pytest.mark.parametrize(("share", "expected"), [(50, 3.0), (95, 5.0), (0, 1.0), (100, 5.0)])
def test_percentile_is_nearest_rank(share: float, expected: float) -> None:
    assert percentile([5, 1, 4, 2, 3], share) == expected


def test_percentile_of_nothing_is_zero() -> None:
    assert percentile([], 95) == 0.0


def test_success_rate_leaves_out_cancelled_and_skipped_runs() -> None:
    runs = [
        RunFact("o/r CI", "success", 10),
        RunFact("o/r CI", "failure", 20),
        RunFact("o/r CI", "cancellation", 5),
        RunFact("o/r CI", "timeout", 30),
    ]

    summary = summarize(runs, [])

    figures = summary.workflows["o/r CI"]
    # Durations, like the success rate, count only runs that reached a verdict.
    assert (figures.runs, figures.p50_s, figures.p95_s) == (4, 20.0, 30.0)
    assert figures.success_rate == pytest.approx(1 / 3)


def test_queue_time_skips_skipped_jobs_and_busy_time_sums_per_group_and_own_runner() -> None:
    jobs = [
        JobFact("ubuntu-latest", "r1", "success", 4, 100, "GitHub Actions", False),
        JobFact("self-hosted,linux", "b1", "failure", 8, 50, "linux", True),
        JobFact("self-hosted,linux", "b1", "success", 2, 25, "linux", True),
        JobFact("ubuntu-latest", "", "skip", 0, 0),
    ]

    summary = summarize([], jobs)

    assert {k: asdict(v) for k, v in summary.queues.items()} == {
        "linux": {"jobs": 2, "p50_s": 2.0, "p95_s": 8.0},
        "self-hosted": {"jobs": 2, "p50_s": 2.0, "p95_s": 8.0},
        "ubuntu-latest": {"jobs": 1, "p50_s": 4.0, "p95_s": 4.0},
    }
    assert summary.group_busy_s == {"GitHub Actions": 100.0, "linux": 75.0}
    assert summary.runner_busy_s == {"b1": 75.0}


def test_demo_day_has_every_kind_of_outcome() -> None:
    scenario = build_scenario(7, 40, now=NOW)

    run_conclusions = {run["conclusion"] for run in scenario.expected.runs}
    job_conclusions = {job["conclusion"] for job in scenario.expected.jobs}
    attempts = {run["attempt"] for run in scenario.expected.runs}
    labels = {job["labels"] for job in scenario.expected.jobs}

    assert run_conclusions == {"success", "failure", "cancelled"}
    assert job_conclusions == {"success", "failure", "cancelled", "skipped", "timed_out"}
    assert attempts == {1, 2}
    assert "self-hosted,linux,x64" in labels and "ubuntu-latest" in labels
    actions = {(d.event, d.payload["action"]) for d in scenario.deliveries}
    assert actions == {
        ("workflow_run", "requested"),
        ("workflow_run", "in_progress"),
        ("workflow_run", "completed"),
        ("workflow_job", "queued"),
        ("workflow_job", "in_progress"),
        ("workflow_job", "completed"),
    }


def test_demo_day_is_reproducible_from_its_seed() -> None:
    first = build_scenario(11, 12, now=NOW)
    second = build_scenario(11, 12, now=NOW)

    assert [d.payload for d in first.deliveries] == [d.payload for d in second.deliveries]


def test_report_of_the_mapped_demo_day_matches_the_demo_books() -> None:
    scenario = build_scenario(3, 40, now=NOW)

    actual = summarize_items(_sink_lines(3, 40))
    expected = summarize_expected(scenario.expected)

    assert actual == expected
    assert "The summary matches what was sent." in format_report(actual, expected)


def test_an_item_delivered_twice_counts_once() -> None:
    scenario = build_scenario(3, 12, now=NOW)
    lines = _sink_lines(3, 12)
    doubled = lines + [next(line for line in lines if line["name"] == "WorkflowRun")]

    report = format_report(summarize_items(doubled), summarize_expected(scenario.expected))

    assert "The summary matches what was sent." in report


def test_an_extra_run_shows_as_a_mismatch() -> None:
    scenario = build_scenario(3, 12, now=NOW)
    lines = _sink_lines(3, 12)
    run = next(line for line in lines if line["name"] == "WorkflowRun")
    other = {**run, "properties": {**run["properties"], "item_id": "0123456789abcdef"}}

    report = format_report(summarize_items([*lines, other]), summarize_expected(scenario.expected))

    assert "MISMATCH" in report
    assert "The summary DOES NOT match what was sent." in report


def test_report_command_reads_the_sink_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = tmp_path / "telemetry.jsonl"
    sink.write_text(
        "\n".join(json.dumps(line) for line in _sink_lines(5, 8)) + "\nnot json\n",
        encoding="utf-8",
    )

    assert main([str(sink), "--html", str(tmp_path / "report.html")]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{len(_sink_lines(5, 8))} events that happened from")
    assert "\nWorkflows (completed runs, all attempts)\n" in out
    assert "octo-demo/api CI" in out
    assert len(read_items(sink)) == len(_sink_lines(5, 8))
    assert out.endswith(f"dashboard: {tmp_path / 'report.html'}\n")


def test_events_are_placed_at_their_event_time_not_the_time_they_were_sent() -> None:
    late = {
        "time": "2024-03-08T09:00:00.000000Z",
        "properties": {"event_time": "2024-03-05T10:04:30.000000Z", "is_late": "true"},
    }
    older_line = {"time": "2024-03-06T11:00:00.000000Z", "properties": {}}

    assert span([late, older_line]) == (
        "2 events that happened from 2024-03-05 10:04 UTC to 2024-03-06 11:00 UTC"
    )


def test_report_command_says_what_to_do_without_a_sink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "missing.jsonl")]) == 1
    assert "run `make run` and `make demo` first" in capsys.readouterr().out
