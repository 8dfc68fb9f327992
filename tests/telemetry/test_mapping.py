"""The entry point: dispatch, reduced payloads, nulls everywhere, and poison-worthy payloads."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.telemetry.mapping import MappingError, to_telemetry
from common.reduction import reduce_payload
from tools.payloads import (
    envelope_for,
    pull_request,
    step,
    workflow_job_payload,
    workflow_run_payload,
)

EXPORTED_AT = datetime(2024, 3, 5, 10, 5, 2, tzinfo=UTC)

PAYLOADS = [
    pytest.param(workflow_run_payload(), id="run-completed"),
    pytest.param(workflow_run_payload("requested"), id="run-requested"),
    pytest.param(workflow_run_payload("in_progress"), id="run-in-progress"),
    pytest.param(
        workflow_run_payload(pull_requests=[pull_request()], event="pull_request"), id="run-pr"
    ),
    pytest.param(
        workflow_run_payload(name=None, head_branch=None, triggering_actor=None), id="run-nulls"
    ),
    pytest.param(workflow_job_payload(), id="job-completed"),
    pytest.param(workflow_job_payload("queued"), id="job-queued"),
    pytest.param(workflow_job_payload("waiting"), id="job-waiting"),
    pytest.param(workflow_job_payload("in_progress"), id="job-in-progress"),
    pytest.param(
        workflow_job_payload(
            steps=[step(1, "Lint", None, None, "skipped")],
            conclusion="failure",
            labels=["self-hosted", "linux"],
        ),
        id="job-failed-self-hosted",
    ),
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_reduced_payload_maps_to_exactly_the_same_items(payload: dict[str, Any]) -> None:
    full = envelope_for(payload)
    reduced = dataclasses.replace(full, payload=reduce_payload(full.event, payload))

    assert reduced.payload != full.payload
    assert to_telemetry(reduced, EXPORTED_AT) == to_telemetry(full, EXPORTED_AT)


def _nullable_keys(inner: str, payload: dict[str, Any], required: set[str]) -> list[str]:
    return [key for key in payload[inner] if key not in required]


RUN_KEYS = _nullable_keys("workflow_run", workflow_run_payload(), {"id"})
JOB_KEYS = _nullable_keys("workflow_job", workflow_job_payload(), {"id", "run_id"})


@pytest.mark.parametrize("key", RUN_KEYS)
def test_any_run_field_sent_as_null_maps_without_error(key: str) -> None:
    payload = workflow_run_payload()
    payload["workflow_run"][key] = None

    (item,) = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert all(isinstance(value, str) for value in item.properties.values())
    assert all(0 <= value <= 65 * 24 * 3600 for value in item.measurements.values())


@pytest.mark.parametrize("key", JOB_KEYS)
def test_any_job_field_sent_as_null_maps_without_error(key: str) -> None:
    payload = workflow_job_payload()
    payload["workflow_job"][key] = None

    items = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert items[0].name == "WorkflowJob"
    for item in items:
        assert all(isinstance(value, str) for value in item.properties.values())
        assert all(0 <= value <= 35 * 24 * 3600 for value in item.measurements.values())


def test_action_falls_back_to_the_payload_when_the_envelope_has_none() -> None:
    envelope = dataclasses.replace(envelope_for(workflow_job_payload("queued")), action="")

    assert [item.name for item in to_telemetry(envelope, EXPORTED_AT)] == ["WorkflowJobQueued"]


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return payload


def _with(payload: dict[str, Any], value: object, *path: str) -> dict[str, Any]:
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return payload


POISON = [
    pytest.param(
        _without(workflow_job_payload(), "workflow_job"), "no `workflow_job` object", id="no-job"
    ),
    pytest.param(
        _with(workflow_job_payload(), None, "workflow_job"),
        "no `workflow_job` object",
        id="null-job",
    ),
    pytest.param(
        _without(workflow_job_payload(), "workflow_job", "id"),
        "`workflow_job.id` is missing",
        id="no-job-id",
    ),
    pytest.param(
        _with(workflow_job_payload("queued"), None, "workflow_job", "id"),
        "`workflow_job.id` is missing",
        id="null-job-id-lifecycle",
    ),
    pytest.param(
        _with(workflow_job_payload(), True, "workflow_job", "id"),
        "`workflow_job.id` is missing or not an id",
        id="boolean-job-id",
    ),
    pytest.param(
        _without(workflow_job_payload(), "workflow_job", "run_id"),
        "`workflow_job.run_id` is missing",
        id="no-run-id",
    ),
    pytest.param(
        _without(workflow_job_payload(), "repository"), "`repository.id` is missing", id="no-repo"
    ),
    pytest.param(
        _without(workflow_run_payload(), "workflow_run", "id"),
        "`workflow_run.id` is missing",
        id="no-run-id-on-run",
    ),
    pytest.param(
        _with(workflow_run_payload("requested"), "", "workflow_run", "id"),
        "`workflow_run.id` is missing",
        id="empty-run-id",
    ),
    pytest.param(
        _with(workflow_run_payload(), [], "workflow_run"),
        "no `workflow_run` object",
        id="run-not-an-object",
    ),
]


@pytest.mark.parametrize(("payload", "reason"), POISON)
def test_payload_without_required_ids_raises_mapping_error(
    payload: dict[str, Any], reason: str
) -> None:
    event = "workflow_run" if "workflow_run" in reason else "workflow_job"

    with pytest.raises(MappingError, match=reason):
        to_telemetry(envelope_for(payload, event=event), EXPORTED_AT)


def test_run_without_top_level_repository_uses_the_nested_one() -> None:
    payload = _without(workflow_run_payload(), "repository")

    (item,) = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert item.properties["repository_id"] == "186853002"
    assert item.properties["repository_full_name"] == "octo-org/octo-repo"


def test_string_ids_and_missing_run_attempt_are_accepted() -> None:
    payload = workflow_job_payload(id="22364958377", run_id=" 8179265011 ")
    del payload["workflow_job"]["run_attempt"]

    items = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert items[0].properties["job_id"] == "22364958377"
    assert items[0].properties["workflow_run_id"] == "8179265011"
    assert items[0].properties["run_attempt"] == "1"
    assert items == to_telemetry(envelope_for(workflow_job_payload()), EXPORTED_AT)


def test_integral_float_ids_and_attempts_read_as_integers() -> None:
    payload = workflow_job_payload(id=22364958377.0, run_id=8179265011.0, run_attempt=2.0)

    items = to_telemetry(envelope_for(payload), EXPORTED_AT)

    assert items == to_telemetry(envelope_for(workflow_job_payload(run_attempt=2)), EXPORTED_AT)
    assert items[0].properties["run_attempt"] == "2"


def test_a_lone_surrogate_in_a_text_field_becomes_encodable_text() -> None:
    payload = workflow_job_payload(name="build \ud800", workflow_name="\udfffCI")

    [job, *_] = to_telemetry(envelope_for(payload, delivery_id="d-\ud800"), EXPORTED_AT)

    assert (job.properties["job_name"], job.properties["workflow_name"]) == ("build ?", "?CI")
    assert job.properties["delivery_id"] == "d-?"
    for item in to_telemetry(envelope_for(payload), EXPORTED_AT):
        for value in item.properties.values():
            value.encode("utf-8")


def test_unhandled_event_is_a_mapping_error() -> None:
    envelope = envelope_for({"action": "opened", "number": 1}, event="pull_request")

    with pytest.raises(MappingError, match="event `pull_request` is not mapped"):
        to_telemetry(envelope, EXPORTED_AT)


def test_mapping_error_is_a_value_error() -> None:
    assert issubclass(MappingError, ValueError)
