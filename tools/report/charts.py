"""The dashboard's charts: one spec per question, each from the figures in `definitions`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tools.report import definitions as d
from tools.report.sink import Event

# The waiting-and-running chart evaluates "now" at most this many times over the sink's span.
MAX_SAMPLES = 96
SAMPLE_STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Series:
    """One named line or set of bars; None where it has no value."""

    name: str
    data: list[float | None]


@dataclass(frozen=True)
class Chart:
    """What the page draws for one question: kind `bar`, `hbar` or `line`, and its query file."""

    id: str
    title: str
    query: str
    kind: str
    unit: str
    categories: list[str]
    series: list[Series] = field(default_factory=list)
    stacked: bool = False
    note: str = ""

    def points(self) -> int:
        """How many values the chart shows."""
        return sum(value is not None for series in self.series for value in series.data)

    def as_json(self) -> dict[str, Any]:
        """The spec as plain JSON for the page's script."""
        return asdict(self)


def _hour(moment: datetime) -> str:
    return moment.strftime("%m-%d %H:%M")


def _pivot(
    figures: dict[tuple[datetime, str], float], label: str = "{}"
) -> tuple[list[str], list[Series]]:
    """Rows keyed (time, name) as categories (times) and one series per name."""
    times = sorted({moment for moment, _ in figures})
    names = sorted({name for _, name in figures})
    series = [
        Series(label.format(name), [figures.get((moment, name)) for moment in times])
        for name in names
    ]
    return [_hour(moment) for moment in times], series


def samples(start: datetime, now: datetime) -> list[datetime]:
    """The moments at which "now" is evaluated: every 15 minutes or more, ending at `now`."""
    step = SAMPLE_STEP
    while (now - start) / step > MAX_SAMPLES:
        step += SAMPLE_STEP
    moments = [now]
    while moments[-1] - step >= start:
        moments.append(moments[-1] - step)
    return moments[::-1]


def build(events: Sequence[Event], now: datetime) -> list[Chart]:
    """Every chart of the dashboard, from the deduplicated events, as of `now`."""
    start = min((event.time for event in events), default=now)
    charts: list[Chart] = []

    per_day = d.runs_per_day(events)
    days = sorted({day for day, _ in per_day})
    results = sorted({result for _, result in per_day})
    charts.append(
        Chart(
            "runs-per-day",
            "Runs per day by result",
            "runs-per-day.kql",
            "bar",
            "runs",
            days,
            [
                Series(result or "(none)", [per_day.get((day, result)) for day in days])
                for result in results
            ],
            stacked=True,
        )
    )

    rates = d.success_rates(events)
    charts.append(
        Chart(
            "success-rate",
            "Success rate per workflow",
            "success-rate-runs.kql",
            "bar",
            "%",
            list(rates),
            [
                Series("all attempts", [rate.rate_all for rate in rates.values()]),
                Series("first attempts", [rate.rate_first for rate in rates.values()]),
            ],
            note="Runs that reached a verdict; no first attempt means no first-attempt rate.",
        )
    )

    for key, name, title, kind in (
        ("run-duration", "WorkflowRun", "Run duration per workflow", "bar"),
        ("job-duration", "WorkflowJob", "Job duration per workflow and job", "hbar"),
    ):
        figures = d.durations(events, name)
        charts.append(
            Chart(
                key,
                title,
                f"{key}.kql",
                kind,
                "s",
                list(figures),
                [
                    Series("p50", [value.p50_s for value in figures.values()]),
                    Series("p95", [value.p95_s for value in figures.values()]),
                ],
            )
        )

    queue = d.queue_times(events)
    hours, series = _pivot({key: value.p95_s for key, value in queue.items()}, "{} p95")
    charts.append(
        Chart(
            "queue-time",
            "Queue time per runner label (p95, by hour)",
            "queue-time.kql",
            "line",
            "s",
            hours,
            series,
        )
    )

    moments = samples(start, now)
    live = [d.jobs_now(events, moment) for moment in moments]
    labels = sorted({label for state in live for label in state})
    charts.append(
        Chart(
            "jobs-now",
            "Jobs waiting or running per label",
            "jobs-now.kql",
            "line",
            "jobs",
            [_hour(moment) for moment in moments],
            [Series(label, [_live_total(state.get(label)) for state in live]) for label in labels],
            note=f"The query evaluated every {_minutes(moments)} min; the last point is now.",
        )
    )

    busy = d.utilization(events, start, now)
    hours, series = _pivot({key: round(100 * value.utilization, 1) for key, value in busy.items()})
    charts.append(
        Chart(
            "utilization",
            "Self-hosted runner utilization per label",
            "utilization.kql",
            "line",
            "%",
            hours,
            series,
            note="Busy time over the elapsed part of each hour, running jobs included.",
        )
    )

    flaky = d.flaky_workflows(events)
    charts.append(
        Chart(
            "flaky",
            "Flakiest workflows",
            "flaky-workflows.kql",
            "bar",
            "runs",
            list(flaky),
            [
                Series("flaky runs", [value.flaky_runs for value in flaky.values()]),
                Series("runs", [value.runs for value in flaky.values()]),
            ],
            note="Runs that failed, then succeeded on a re-run.",
        )
    )

    steps = d.slowest_steps(events)
    charts.append(
        Chart(
            "slowest-steps",
            "Slowest steps (p95)",
            "slowest-steps.kql",
            "hbar",
            "s",
            list(steps),
            [
                Series("p50", [value.p50_s for value in steps.values()]),
                Series("p95", [value.p95_s for value in steps.values()]),
            ],
        )
    )

    hotspots = d.failure_hotspots(events)
    charts.append(
        Chart(
            "failure-hotspots",
            "Failure hot spots by job and step",
            "failure-hotspots.kql",
            "hbar",
            "failures",
            list(hotspots),
            [Series("failures", list(hotspots.values()))],
        )
    )

    lag = d.delivery_lag(events)
    charts.append(
        Chart(
            "delivery-lag",
            "Delivery and processing lag (p95, by hour)",
            "delivery-lag.kql",
            "line",
            "s",
            [_hour(hour) for hour in lag],
            [
                Series("delivery lag p95", [value.p95_delivery_s for value in lag.values()]),
                Series("processing lag p95", [value.p95_processing_s for value in lag.values()]),
            ],
        )
    )
    return charts


def _minutes(moments: Sequence[datetime]) -> int:
    step = moments[1] - moments[0] if len(moments) > 1 else SAMPLE_STEP
    return int(step.total_seconds() // 60)


def _live_total(live: d.Live | None) -> int:
    if live is None:
        return 0
    return live.waiting_for_runner + live.waiting_for_approval + live.running
