"""Parsing a verified request into its envelope: headers, both content types, required ids."""

from __future__ import annotations

from typing import Any

import pytest

from common.envelope import Envelope
from frontend.delivery import (
    EVENTS,
    InvalidDelivery,
    Route,
    UnsupportedMediaType,
    parse_delivery,
    require_media_type,
    rule_for,
)
from tests.frontend.deliveries import HOOK_ID, form_body, github_headers, json_body
from tools.payloads import (
    DELIVERY_ID,
    ORG_ID,
    RECEIVED_AT,
    workflow_job_payload,
    workflow_run_payload,
)


def _parse(payload: Any, event: str = "workflow_run", body: bytes | None = None) -> Envelope:
    body = json_body(payload) if body is None else body
    headers = github_headers(body, event)
    return parse_delivery(headers, headers["Content-Type"], body, RECEIVED_AT)


def test_a_json_workflow_run_delivery_is_parsed_with_every_header() -> None:
    payload = workflow_run_payload("completed")

    delivery = _parse(payload)

    assert delivery == Envelope(
        delivery_id=DELIVERY_ID,
        event="workflow_run",
        action="completed",
        received_at=RECEIVED_AT,
        payload=payload,
        hook_id=HOOK_ID,
        installation_target_type="organization",
        installation_target_id=str(ORG_ID),
    )


def test_a_form_encoded_delivery_parses_to_the_same_payload() -> None:
    payload = workflow_job_payload("in_progress")
    body = form_body(payload)
    headers = github_headers(body, "workflow_job", content_type="application/x-www-form-urlencoded")

    delivery = parse_delivery(headers, headers["Content-Type"], body, RECEIVED_AT)

    assert (delivery.event, delivery.action, delivery.payload) == (
        "workflow_job",
        "in_progress",
        payload,
    )


def test_header_names_are_case_insensitive() -> None:
    body = json_body({"zen": "Keep it logically awesome."})
    headers = {name.lower(): value for name, value in github_headers(body, "ping").items()}

    delivery = parse_delivery(headers, "application/json", body, RECEIVED_AT)

    assert (delivery.delivery_id, delivery.event) == (DELIVERY_ID, "ping")
    assert rule_for(delivery.event).route is Route.PONG


def test_optional_headers_default_to_empty() -> None:
    body = json_body(workflow_run_payload())
    headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-1"}

    delivery = parse_delivery(headers, "application/json", body, RECEIVED_AT)

    assert (delivery.hook_id, delivery.installation_target_type) == ("", "")
    assert delivery.installation_target_id == ""


def test_the_event_table_queues_two_events_and_answers_ping() -> None:
    routes = {event: rule.route for event, rule in EVENTS.items()}

    assert routes == {
        "workflow_run": Route.QUEUE,
        "workflow_job": Route.QUEUE,
        "ping": Route.PONG,
    }
    assert rule_for("push").route is Route.IGNORE


def test_an_ignored_event_is_parsed_without_checking_ids() -> None:
    delivery = _parse({"ref": "refs/heads/main"}, event="push")

    assert (rule_for(delivery.event).route, delivery.action) == (Route.IGNORE, "")


@pytest.mark.parametrize(
    ("content_type", "media_type"),
    [
        ("application/json", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        ("Application/JSON", "application/json"),
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ],
)
def test_supported_media_types(content_type: str, media_type: str) -> None:
    assert require_media_type(content_type) == media_type


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        (None, "(none)"),
        ("", "(none)"),
        ("text/plain", "text/plain"),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/jsonx", "application/jsonx"),
    ],
)
def test_unsupported_media_types(content_type: str | None, shown: str) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        require_media_type(content_type)

    assert str(raised.value) == (
        f"content type {shown} is not supported: "
        "send application/json or application/x-www-form-urlencoded"
    )


def _without(payload: dict[str, Any], *path: str) -> dict[str, Any]:
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return payload


@pytest.mark.parametrize(
    ("event", "payload", "message"),
    [
        (
            "workflow_run",
            _without(workflow_run_payload(), "workflow_run", "id"),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run.id: missing data for required field",
        ),
        (
            "workflow_run",
            _without(workflow_run_payload(), "workflow_run", "run_attempt"),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run.run_attempt: missing data for required field",
        ),
        (
            "workflow_run",
            workflow_run_payload(id=None),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run.id: field may not be null",
        ),
        (
            "workflow_run",
            workflow_run_payload(id="8179265011"),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run.id: not a valid integer",
        ),
        (
            "workflow_run",
            _without(workflow_run_payload(), "workflow_run"),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run: missing data for required field",
        ),
        (
            "workflow_job",
            _without(workflow_job_payload(), "workflow_job", "id"),
            "workflow_job payload lacks what the backend needs: "
            "workflow_job.id: missing data for required field",
        ),
        (
            "workflow_job",
            _without(workflow_job_payload(), "workflow_job", "run_id"),
            "workflow_job payload lacks what the backend needs: "
            "workflow_job.run_id: missing data for required field",
        ),
        (
            "workflow_job",
            {**workflow_job_payload(), "workflow_job": "not an object"},
            "workflow_job payload lacks what the backend needs: workflow_job._schema: "
            "invalid input type",
        ),
        (
            "workflow_job",
            _without(workflow_job_payload(), "repository", "full_name"),
            "workflow_job payload lacks what the backend needs: "
            "repository.full_name: missing data for required field",
        ),
        (
            "workflow_job",
            _without(workflow_job_payload(), "repository", "id"),
            "workflow_job payload lacks what the backend needs: "
            "repository.id: missing data for required field",
        ),
        (
            "workflow_job",
            _without(workflow_job_payload(), "action"),
            "workflow_job payload lacks what the backend needs: "
            "action: missing data for required field",
        ),
    ],
    ids=[
        "run-id",
        "run-attempt",
        "null-run-id",
        "string-run-id",
        "no-run",
        "job-id",
        "job-run-id",
        "job-not-object",
        "repo-full-name",
        "repo-id",
        "action",
    ],
)
def test_missing_ids_are_invalid(event: str, payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidDelivery) as raised:
        _parse(payload, event=event)

    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "body is not valid JSON: Expecting property name enclosed in double quotes"),
        (b"", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"\xff\xfe{}", "body is not valid JSON"),
        (b"[]", "body is a JSON array, not an object"),
        (b'"text"', "body is a JSON string, not an object"),
        (b"3", "body is a JSON number, not an object"),
        (b"null", "body is a JSON null, not an object"),
        (b"true", "body is a JSON boolean, not an object"),
        (b'{"a": NaN}', "body is not valid JSON: NaN is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body nests objects and arrays deeper than 64 levels"),
    ],
    ids=[
        "truncated",
        "empty",
        "not-utf8",
        "array",
        "string",
        "number",
        "null",
        "bool",
        "nan",
        "deep",
    ],
)
def test_bodies_that_are_not_json_objects_are_invalid(body: bytes, message: str) -> None:
    with pytest.raises(InvalidDelivery) as raised:
        _parse(None, event="push", body=body)

    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "form body must have exactly one payload field"),
        (b"other=1", "form body must have exactly one payload field"),
        (b"payload=%7B%7D&payload=%7B%7D", "form body must have exactly one payload field"),
        (b"payload=%ff", "form body is not URL-encoded"),
        ("payload=é".encode(), "form body is not URL-encoded"),
        (b"a=1&" * 20, "form body is not URL-encoded"),
        (b"payload=%5B%5D", "body is a JSON array, not an object"),
    ],
    ids=["empty", "no-payload", "two-payloads", "bad-utf8", "non-ascii", "many-fields", "array"],
)
def test_malformed_form_bodies_are_invalid(body: bytes, message: str) -> None:
    headers = github_headers(body, "push", content_type="application/x-www-form-urlencoded")

    with pytest.raises(InvalidDelivery) as raised:
        parse_delivery(headers, headers["Content-Type"], body, RECEIVED_AT)

    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("X-GitHub-Event", "missing X-GitHub-Event header"),
        ("X-GitHub-Delivery", "missing X-GitHub-Delivery header"),
    ],
)
def test_missing_required_headers_are_invalid(missing: str, message: str) -> None:
    body = json_body(workflow_run_payload())
    headers = github_headers(body, "workflow_run")
    del headers[missing]

    with pytest.raises(InvalidDelivery) as raised:
        parse_delivery(headers, "application/json", body, RECEIVED_AT)

    assert str(raised.value) == message


def test_an_overlong_header_is_invalid() -> None:
    body = json_body(workflow_run_payload())
    headers = github_headers(body, "workflow_run", delivery_id="d" * 201)

    with pytest.raises(InvalidDelivery) as raised:
        parse_delivery(headers, "application/json", body, RECEIVED_AT)

    assert str(raised.value) == "X-GitHub-Delivery header is longer than 200 characters"
