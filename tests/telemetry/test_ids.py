"""Operation, parent and item ids: deterministic, W3C-shaped, and chained run → job → step."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from backend.telemetry import ids
from backend.telemetry.item import TelemetryItem
from backend.telemetry.mapping import to_telemetry
from tools.payloads import envelope_for, workflow_job_payload, workflow_run_payload

EXPORTED_AT = datetime(2024, 3, 5, 10, 5, 0, tzinfo=UTC)
OPERATION_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")


def _all_events_of_one_attempt(attempt: int = 1) -> list[TelemetryItem]:
    payloads = [
        workflow_run_payload("requested", run_attempt=attempt),
        workflow_run_payload("in_progress", run_attempt=attempt),
        workflow_job_payload("waiting", run_attempt=attempt),
        workflow_job_payload("queued", run_attempt=attempt),
        workflow_job_payload("in_progress", run_attempt=attempt),
        workflow_job_payload("completed", run_attempt=attempt),
        workflow_run_payload("completed", run_attempt=attempt),
    ]
    return [
        item for payload in payloads for item in to_telemetry(envelope_for(payload), EXPORTED_AT)
    ]


def test_ids_are_pinned_so_a_change_of_scheme_is_deliberate() -> None:
    assert ids.operation_id("186853002", "8179265011", "1") == "862089ad903bd1c50c1c086be9fbb08b"
    assert ids.run_attempt_id("186853002", "8179265011", "1") == "db987d6f9b7c0ac3"
    assert ids.job_item_id("186853002", "22364958377") == "61574112bbc7dde7"


def test_every_event_of_one_attempt_shares_one_w3c_operation_id() -> None:
    items = _all_events_of_one_attempt()

    assert {item.operation_id for item in items} == {"862089ad903bd1c50c1c086be9fbb08b"}
    assert all(OPERATION_ID.match(item.operation_id) for item in items)
    assert all(SPAN_ID.match(item.item_id) for item in items)


def test_item_ids_are_distinct_per_event() -> None:
    items = _all_events_of_one_attempt()

    assert len(items) == 11
    assert len({item.item_id for item in items}) == 11


def test_parent_chain_runs_from_step_to_job_to_run_attempt() -> None:
    items = _all_events_of_one_attempt()
    by_name: dict[str, list[TelemetryItem]] = {}
    for item in items:
        by_name.setdefault(item.name, []).append(item)
    (run,) = by_name["WorkflowRun"]
    (job,) = by_name["WorkflowJob"]

    assert run.parent_id == ""
    assert by_name["WorkflowRunRequested"][0].parent_id == ""
    assert by_name["WorkflowRunInProgress"][0].parent_id == ""
    for name in ("WorkflowJob", "WorkflowJobQueued", "WorkflowJobWaiting", "WorkflowJobInProgress"):
        assert by_name[name][0].parent_id == run.item_id, name
    assert [step.parent_id for step in by_name["WorkflowStep"]] == [job.item_id] * 4


def test_every_event_carries_its_own_id_so_a_parent_id_can_be_joined() -> None:
    items = _all_events_of_one_attempt()
    exported_ids = {item.properties["item_id"] for item in items}

    assert [item.properties["item_id"] for item in items] == [item.item_id for item in items]
    assert {item.parent_id for item in items} - {""} <= exported_ids
    [job] = [item for item in items if item.name == "WorkflowJob"]
    [run] = [item for item in items if item.name == "WorkflowRun"]
    assert (job.properties["item_id"], run.properties["item_id"]) == (
        "61574112bbc7dde7",
        "db987d6f9b7c0ac3",
    )
    assert job.parent_id == run.properties["item_id"]


def test_redelivery_maps_to_the_same_ids() -> None:
    payload = workflow_job_payload()
    first = to_telemetry(envelope_for(payload), EXPORTED_AT)

    again = to_telemetry(
        envelope_for(
            workflow_job_payload(),
            delivery_id="0b9e1c5e-cc79-11e3-81ab-4c9367dc0958",
            received_at=datetime(2024, 3, 6, 8, 0, 0, tzinfo=UTC),
        ),
        datetime(2024, 3, 6, 8, 0, 5, tzinfo=UTC),
    )

    def id_triples(items: list[TelemetryItem]) -> list[tuple[str, str, str]]:
        return [(item.operation_id, item.parent_id, item.item_id) for item in items]

    assert id_triples(again) == id_triples(first)


def test_a_re_run_is_a_new_operation_and_its_jobs_point_at_the_new_attempt() -> None:
    first = {item.name: item for item in _all_events_of_one_attempt(1)}
    second = {item.name: item for item in _all_events_of_one_attempt(2)}

    assert second["WorkflowRun"].operation_id != first["WorkflowRun"].operation_id
    assert second["WorkflowRun"].item_id != first["WorkflowRun"].item_id
    assert second["WorkflowJob"].parent_id == second["WorkflowRun"].item_id


def test_the_same_run_id_in_another_repository_is_another_operation() -> None:
    assert ids.operation_id("1", "8179265011", "1") != ids.operation_id("2", "8179265011", "1")
