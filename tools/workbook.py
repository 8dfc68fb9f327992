"""Build the Azure Monitor workbook from docs/queries/*.kql: `python -m tools.workbook`.

Each query file opens with `let` lines for its parameters (the last 30 days, every repository
and workflow, when run as is); the workbook replaces them with its own parameters, so the
workbook runs exactly the checked text. tests/tools/test_workbook.py holds the committed JSON
equal to what this builds.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT / "docs" / "queries"
WORKBOOK = ROOT / "infra" / "workbook" / "github-telemetry.workbook.json"
# Ids in the JSON are derived from names, so rebuilding changes nothing that did not change.
NAMESPACE = uuid.UUID("6c1f3b52-4a3e-4c55-9d0e-7f1b8f2a6e10")

# (file, title, visualization); every .kql file appears once.
PANELS: tuple[tuple[str, str, str], ...] = (
    ("runs-per-day.kql", "Runs per day by result", "barchart"),
    ("success-rate-runs.kql", "Success rate per workflow", "table"),
    ("success-rate-jobs.kql", "Success rate per job", "table"),
    ("run-duration.kql", "Run duration per workflow (p50, p95 s)", "table"),
    ("job-duration.kql", "Job duration per workflow and job (p50, p95 s)", "table"),
    ("queue-time.kql", "Queue time per runner label over time", "timechart"),
    ("jobs-now.kql", "Jobs waiting and running now, per label (last 30 days)", "table"),
    ("utilization.kql", "Self-hosted runner busy time and utilization per label", "timechart"),
    ("flaky-workflows.kql", "Flakiest workflows", "table"),
    ("slowest-steps.kql", "Slowest steps", "table"),
    ("failure-hotspots.kql", "Failure hot spots by job and step", "table"),
    ("delivery-lag.kql", "Delivery and processing lag", "timechart"),
    ("jobs-with-runs.kql", "Jobs with their run attempt", "table"),
)

# A file's parameter line, and what the workbook puts in its place.
FILLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^let start_time = .*;$", re.M), "let start_time = {TimeRange:start};"),
    (re.compile(r"^let end_time = now\(\);$", re.M), "let end_time = {TimeRange:end};"),
    (
        re.compile(r"^let repositories = dynamic\(\[\]\);$", re.M),
        "let repositories = dynamic([{Repository}]);",
    ),
    (
        re.compile(r"^let workflows = dynamic\(\[\]\);$", re.M),
        "let workflows = dynamic([{Workflow}]);",
    ),
)
PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")

_DISTINCT = (
    "customEvents\n"
    '| where timestamp {{TimeRange}} and name == "WorkflowRun"\n'
    "{filter}"
    "| distinct value = tostring(customDimensions.{field})\n"
    "| order by value asc"
)


def fill(text: str) -> str:
    """The query as the workbook runs it: each parameter line replaced by its parameter."""
    for pattern, replacement in FILLS:
        # Split and join rather than `sub`, which would read `\` escapes in the replacement.
        text = replacement.join(pattern.split(text))
    return text


def _id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def _dropdown(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-select list of values; "All" selects nothing, which the queries read as all."""
    return {
        "id": _id(name),
        "version": "KqlParameterItem/1.0",
        "name": name,
        "label": label,
        "type": 2,
        "isRequired": False,
        "multiSelect": True,
        "quote": "'",
        "delimiter": ",",
        "query": query,
        "typeSettings": {"additionalResourceOptions": ["value::all"], "selectAllValue": ""},
        "defaultValue": "value::all",
        "queryType": 0,
        "resourceType": "microsoft.insights/components",
    }


def parameters() -> dict[str, Any]:
    """The parameter item: time range, repository, and workflow (of the chosen repositories)."""
    repository_query = _DISTINCT.format(filter="", field="repository_full_name")
    workflow_query = _DISTINCT.format(
        filter=(
            "| where array_length(dynamic([{Repository}])) == 0\n"
            "    or tostring(customDimensions.repository_full_name) in (dynamic([{Repository}]))\n"
        ),
        field="workflow_name",
    )
    return {
        "type": 9,
        "name": "parameters",
        "content": {
            "version": "KqlParameterItem/1.0",
            "style": "pills",
            "queryType": 0,
            "resourceType": "microsoft.insights/components",
            "parameters": [
                {
                    "id": _id("TimeRange"),
                    "version": "KqlParameterItem/1.0",
                    "name": "TimeRange",
                    "label": "Time range",
                    "type": 4,
                    "isRequired": True,
                    "value": {"durationMs": 86400000 * 7},
                    "typeSettings": {
                        "selectableValues": [
                            {"durationMs": ms} for ms in (3600000, 86400000, 604800000, 2592000000)
                        ],
                        "allowCustom": True,
                    },
                },
                _dropdown("Repository", "Repository", repository_query),
                _dropdown("Workflow", "Workflow", workflow_query),
            ],
        },
    }


def panel(file: str, title: str, visualization: str) -> dict[str, Any]:
    """One query item: the file's text with its parameters filled."""
    return {
        "type": 3,
        "name": file.removesuffix(".kql"),
        "content": {
            "version": "KqlItem/1.0",
            "title": title,
            "query": fill((QUERIES / file).read_text(encoding="utf-8")),
            "size": 0,
            "queryType": 0,
            "resourceType": "microsoft.insights/components",
            "visualization": visualization,
        },
    }


def build() -> dict[str, Any]:
    """The workbook: a heading, the parameters, and one item per query file."""
    heading = {
        "type": 1,
        "name": "heading",
        "content": {
            "json": (
                "## GitHub Actions telemetry\n"
                "Workflow runs, jobs and steps from github-telemetry. Events are placed at "
                "`event_time` (when they happened) and each `item_id` counts once; the "
                "queries are docs/queries/*.kql in the repository."
            )
        },
    }
    items = [heading, parameters(), *(panel(*entry) for entry in PANELS)]
    return {"version": "Notebook/1.0", "items": items, "isLocked": False, "fallbackResourceIds": []}


def render() -> str:
    """The workbook's JSON text as committed."""
    return json.dumps(build(), indent=2) + "\n"


def main() -> int:
    """Write the workbook file."""
    WORKBOOK.parent.mkdir(parents=True, exist_ok=True)
    WORKBOOK.write_text(render(), encoding="utf-8")
    print(WORKBOOK.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
