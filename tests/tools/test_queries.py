"""docs/queries/*.kql: parsed and type-checked by the Kusto language service, fixed as issue 14
asks, and shown by the docs from the files themselves."""

from __future__ import annotations

import re

import pytest

from tests.tools.kusto import ROOT, diagnose, errors, prime, query_files

QUESTIONS = {
    "runs-per-day.kql",
    "run-duration.kql",
    "job-duration.kql",
    "queue-time.kql",
    "jobs-now.kql",
    "utilization.kql",
    "flaky-workflows.kql",
    "slowest-steps.kql",
    "failure-hotspots.kql",
    "delivery-lag.kql",
    "success-rate-runs.kql",
    "success-rate-jobs.kql",
}
DEDUP = "| summarize arg_max(timestamp, *) by item_id = tostring(customDimensions.item_id)"


BROKEN = {
    "unknown-column": ("customEvents | where nosuch > 1", "KS142"),
    "syntax": ("customEvents | summarize count() by", "KS006"),
    "type-mismatch": ("customEvents | where name > now()", "KS"),
    "unknown-table": ("customEvent | take 1", "KS"),
}


@pytest.fixture(scope="module", autouse=True)
def _checked_at_once() -> None:
    prime({**query_files(), **{f"{key}.kql": text for key, (text, _) in BROKEN.items()}})


def test_there_is_a_file_for_every_question() -> None:
    assert QUESTIONS <= set(query_files())


def test_every_query_parses_and_type_checks_against_custom_events() -> None:
    assert errors(query_files()) == {}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_query_fails_the_check(case: str) -> None:
    broken, code = BROKEN[case]
    found = diagnose({f"{case}.kql": broken})[f"{case}.kql"]

    assert [d for d in found if d["severity"] == "Error" and d["code"].startswith(code)]


def test_the_schema_declares_what_the_queries_read() -> None:
    text = "customEvents | project timestamp, name, itemId, itemCount, customDimensions, "
    text += "customMeasurements, operation_Id, operation_Name, operation_ParentId, cloud_RoleName"

    assert errors({"columns.kql": text}) == {}


@pytest.mark.parametrize("name", sorted(QUESTIONS - {"jobs-now.kql", "utilization.kql"}))
def test_every_count_is_deduplicated_by_item_id_and_weighted_by_item_count(name: str) -> None:
    text = query_files()[name]

    assert DEDUP in text
    assert "count()" not in text.replace("summarize runs = count()", "")
    if "flaky" not in name:
        assert "itemCount" in text


@pytest.mark.parametrize("name", ["success-rate-runs.kql", "success-rate-jobs.kql"])
def test_success_rates_never_divide_by_zero(name: str) -> None:
    text = query_files()[name]

    guarded = "iff(first_attempts > 0,\n"
    assert guarded in text and "real(null)" in text
    # The only division by first_attempts is the guarded one.
    assert text.count("/ first_attempts") == 1
    assert text.index(guarded) < text.index("/ first_attempts")


def test_jobs_now_orders_states_by_receipt_and_looks_back_30_days() -> None:
    text = query_files()["jobs-now.kql"]

    assert "let lookback = 30d;" in text and "ago(lookback)" in text
    assert "todatetime(customDimensions.received_at)" in text
    assert "arg_max(received_at, name, labels)" in text
    assert "arg_max(event_time" not in text
    assert DEDUP in text


def test_utilization_counts_running_jobs_and_the_elapsed_part_of_the_hour() -> None:
    text = query_files()["utilization.kql"]

    assert '"WorkflowJobInProgress"' in text
    assert "iff(finished > 0, ended_at, end_time)" in text
    assert "hour_end = min_of(hour + 1h, end_time)" in text
    assert "((hour_end - hour) / 1s)" in text
    assert "3600" not in text
    assert DEDUP in text


def test_every_query_places_events_at_event_time() -> None:
    for name, text in query_files().items():
        assert "event_time = todatetime(customDimensions.event_time)" in text, name
        assert "bin(timestamp" not in text and "timestamp >" not in text, name


def test_the_docs_link_every_query_file_and_copy_none() -> None:
    docs = (ROOT / "docs" / "queries.md").read_text(encoding="utf-8")

    linked = set(re.findall(r"\]\(queries/([\w-]+\.kql)\)", docs))
    assert linked == set(query_files())
    assert "```kusto" not in docs and "customEvents\n|" not in docs
