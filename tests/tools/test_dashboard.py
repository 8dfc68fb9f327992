"""The local dashboard: offline, agreeing with the text report and the demo's books, and drawn
with data in a real browser."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.tools.browser import ChartMarks, dump_dom, png_pixels, require_browser, screenshot
from tests.tools.demo_sink import sink_lines
from tools.demo_day import build_scenario
from tools.report import (
    charts,
    definitions,
    html,
    summarize_expected,
    summarize_items,
    write_dashboard,
)
from tools.report.html import ECHARTS_JS
from tools.report.sink import events

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
SEED, RUNS = 3, 40


@pytest.fixture(scope="module")
def demo_day() -> list[dict[str, object]]:
    return sink_lines(SEED, RUNS, NOW)


@pytest.fixture(scope="module")
def page(demo_day: list[dict[str, object]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ECHARTS_JS.exists():
        pytest.skip(f"{ECHARTS_JS.name} is not installed (`make install`)")
    return write_dashboard(demo_day, tmp_path_factory.mktemp("dashboard") / "report.html", NOW)


def by_id(built: list[charts.Chart]) -> dict[str, charts.Chart]:
    return {chart.id: chart for chart in built}


def test_every_question_has_a_chart_with_data(demo_day: list[dict[str, object]]) -> None:
    built = charts.build(events(demo_day), NOW)

    assert {chart.query for chart in built} == {
        path.name
        for path in Path("docs/queries").glob("*.kql")
        if path.name not in {"success-rate-jobs.kql", "jobs-with-runs.kql"}
    }
    assert {chart.id: chart.points() > 0 for chart in built} == {chart.id: True for chart in built}


def test_the_dashboard_agrees_with_the_text_report_and_the_demo_books(
    demo_day: list[dict[str, object]],
) -> None:
    scenario = build_scenario(SEED, RUNS, now=NOW)
    expected = summarize_expected(scenario.expected)
    text = summarize_items(demo_day)
    built = by_id(charts.build(events(demo_day), NOW))
    assert text == expected

    runs = built["runs-per-day"]
    assert sum(v or 0 for series in runs.series for v in series.data) == len(scenario.expected.runs)
    durations = built["run-duration"]
    p50, p95 = (dict(zip(durations.categories, s.data, strict=True)) for s in durations.series)
    rates = dict(
        zip(built["success-rate"].categories, built["success-rate"].series[0].data, strict=True)
    )
    for workflow, figures in expected.workflows.items():
        assert (p50[workflow], p95[workflow]) == (figures.p50_s, figures.p95_s)
        assert figures.success_rate is not None
        assert rates[workflow] == round(100 * figures.success_rate, 1)


def test_busy_time_per_label_adds_up_to_the_self_hosted_jobs_sent(
    demo_day: list[dict[str, object]],
) -> None:
    scenario = build_scenario(SEED, RUNS, now=NOW)
    sent: dict[str, float] = defaultdict(float)
    for job in scenario.expected.jobs:
        if "self-hosted" in job["labels"].split(","):
            for label in job["labels"].split(","):
                sent[label] += job["duration_s"]

    busy = definitions.utilization(events(demo_day), NOW - timedelta(days=1), NOW)
    per_label: dict[str, float] = defaultdict(float)
    for (_, label), figures in busy.items():
        per_label[label] += figures.busy_s

    assert per_label == sent


def test_the_page_is_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    assert html.count("<script") == 3
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S)
    assert data is not None
    assert [chart["id"] for chart in json.loads(data.group(1))] == [
        chart.id for chart in charts.build(events(sink_lines(SEED, RUNS, NOW)), NOW)
    ]


def test_chromium_draws_every_chart_with_data(page: Path, tmp_path: Path) -> None:
    browser = require_browser()
    specs = by_id(charts.build(events(sink_lines(SEED, RUNS, NOW)), NOW))
    # The same charts with every value removed: axes, grid and legend only.
    empty = [
        replace(chart, series=[replace(s, data=[None] * len(s.data)) for s in chart.series])
        for chart in specs.values()
    ]
    control = html.write(tmp_path / "empty.html", empty, "no data", NOW)

    dom = dump_dom(browser, page, tmp_path)
    drawn, bare = ChartMarks(), ChartMarks()
    drawn.feed(dom)
    bare.feed(dump_dom(browser, control, tmp_path))

    assert f'data-charts-drawn="{len(specs)}"' in dom
    assert drawn.points == {name: chart.points() for name, chart in specs.items()}
    for name, chart in specs.items():
        # A bar is a shape of its own; a line is at least one shape per series.
        least = chart.points() if chart.kind != "line" else len(chart.series)
        assert drawn.marks[name] >= bare.marks[name] + least, name


def test_chromium_screenshot_is_not_blank(page: Path, tmp_path: Path) -> None:
    browser = require_browser()

    shot = screenshot(browser, page, tmp_path / "report.png", tmp_path, size="1000,1400")

    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    sampled = [row[i : i + 3] for row in rows[::4] for i in range(0, len(row), 12)]
    background = max(set(sampled), key=sampled.count)
    assert len(set(sampled)) > 50
    assert sum(pixel != background for pixel in sampled) > len(sampled) // 20
