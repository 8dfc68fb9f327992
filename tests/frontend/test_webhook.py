"""The HTTP contract through Flask's test client, with the in-memory queue: 2xx, 401, 400."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.envelope import Envelope, decode
from common.memory_queue import InMemoryQueue
from common.reduction import reduce_payload
from frontend.signature import sign
from tests.frontend.deliveries import (
    HOOK_ID,
    OLD_SECRET,
    form_body,
    github_headers,
    json_body,
    post_webhook,
    signed_delivery,
)
from tools.payloads import (
    DELIVERY_ID,
    ORG_ID,
    RECEIVED_AT,
    workflow_job_payload,
    workflow_run_payload,
)

FORM = "application/x-www-form-urlencoded"


def _queued(queue: InMemoryQueue) -> list[Envelope]:
    return [decode(message.content) for message in queue.receive(32, visibility_timeout_s=30)]


def test_health_answers_without_touching_the_queue(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    memory_queue.unavailable = True

    response = client.get("/health")

    assert (response.status_code, response.json) == (200, {"status": "healthy"})


def test_ready_answers_200_when_the_queue_answers(client: FlaskClient) -> None:
    response = client.get("/ready")

    assert (response.status_code, response.json) == (200, {"status": "ready"})


def test_ready_answers_503_when_the_queue_does_not(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    memory_queue.unavailable = True

    response = client.get("/ready")

    assert (response.status_code, response.json) == (
        503,
        {"error": "queue unavailable, retry later"},
    )
    assert response.headers["Retry-After"] == "30"


def test_a_signed_workflow_run_is_queued_as_its_envelope(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    payload = workflow_run_payload("completed")
    body = json_body(payload)
    before = datetime.now(UTC)

    response = post_webhook(client, body, github_headers(body, "workflow_run"))

    after = datetime.now(UTC)
    assert (response.status_code, response.json) == (
        202,
        {"status": "queued", "event": "workflow_run", "delivery_id": DELIVERY_ID},
    )
    [envelope] = _queued(memory_queue)
    assert before <= envelope.received_at <= after
    assert replace(envelope, received_at=RECEIVED_AT) == Envelope(
        delivery_id=DELIVERY_ID,
        event="workflow_run",
        action="completed",
        received_at=RECEIVED_AT,
        payload=reduce_payload("workflow_run", payload),
        hook_id=HOOK_ID,
        installation_target_type="organization",
        installation_target_id=str(ORG_ID),
    )


def test_a_form_encoded_workflow_job_is_queued(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    payload = workflow_job_payload("queued")
    body = form_body(payload)

    response = post_webhook(client, body, github_headers(body, "workflow_job", content_type=FORM))

    assert response.status_code == 202
    [envelope] = _queued(memory_queue)
    assert (envelope.event, envelope.action, envelope.payload) == (
        "workflow_job",
        "queued",
        reduce_payload("workflow_job", payload),
    )


def test_a_delivery_signed_with_the_previous_secret_is_queued(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body = json_body(workflow_job_payload("completed"))

    response = post_webhook(client, body, github_headers(body, "workflow_job", secret=OLD_SECRET))

    assert (response.status_code, memory_queue.sent_count) == (202, 1)


def test_ping_is_answered_200_and_not_queued(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body = json_body({"zen": "Design for failure.", "hook_id": int(HOOK_ID)})

    response = post_webhook(client, body, github_headers(body, "ping"))

    assert (response.status_code, response.json) == (
        200,
        {"status": "pong", "event": "ping", "delivery_id": DELIVERY_ID},
    )
    assert memory_queue.sent_count == 0


def test_other_events_are_answered_200_and_ignored(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body = json_body({"ref": "refs/heads/main", "commits": []})

    response = post_webhook(client, body, github_headers(body, "push"))

    assert (response.status_code, response.json) == (
        200,
        {"status": "ignored", "event": "push", "delivery_id": DELIVERY_ID},
    )
    assert memory_queue.sent_count == 0


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        (None, "missing X-Hub-Signature-256 header"),
        ("sha1=0123456789abcdef0123456789abcdef01234567", "malformed X-Hub-Signature-256"),
        ("sha256=" + "é" * 64, "malformed X-Hub-Signature-256"),
        (sign(b"another body", "webhook-secret-for-tests"), "X-Hub-Signature-256 does not match"),
        (sign(json_body(workflow_run_payload()), "wrong"), "X-Hub-Signature-256 does not match"),
    ],
    ids=["missing", "wrong-prefix", "non-ascii", "other-body", "wrong-secret"],
)
def test_bad_signatures_are_401(
    client: FlaskClient, memory_queue: InMemoryQueue, signature: str | None, message: str
) -> None:
    body, headers = signed_delivery()
    del headers["X-Hub-Signature-256"]
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature

    response = post_webhook(client, body, headers)

    assert response.status_code == 401
    assert response.json is not None and response.json["error"].startswith(message)
    assert memory_queue.sent_count == 0


def test_the_signature_is_checked_before_the_body_and_headers(client: FlaskClient) -> None:
    body = b"not json"
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, "wrong")}

    response = post_webhook(client, body, headers)

    assert (response.status_code, response.json) == (
        401,
        {"error": "X-Hub-Signature-256 does not match the body"},
    )


def test_a_shorter_content_length_than_the_body_fails_the_signature(client: FlaskClient) -> None:
    body, headers = signed_delivery()

    response = post_webhook(client, body, headers, environ_overrides={"CONTENT_LENGTH": "10"})

    assert response.status_code == 401


def _payload_without_run_id() -> dict[str, Any]:
    payload = workflow_run_payload()
    del payload["workflow_run"]["id"]
    return payload


@pytest.mark.parametrize(
    ("event", "body", "message"),
    [
        ("workflow_run", b"{not json", "body is not valid JSON: "),
        ("workflow_run", b"[1, 2]", "body is a JSON array, not an object"),
        ("push", b"42", "body is a JSON number, not an object"),
        (
            "workflow_run",
            json_body(_payload_without_run_id()),
            "workflow_run payload lacks what the backend needs: "
            "workflow_run.id: missing data for required field",
        ),
    ],
    ids=["bad-json", "array", "ignored-event-number", "missing-id"],
)
def test_bodies_that_cannot_be_from_github_are_400(
    client: FlaskClient, memory_queue: InMemoryQueue, event: str, body: bytes, message: str
) -> None:
    response = post_webhook(client, body, github_headers(body, event))

    assert response.status_code == 400
    assert response.json is not None and response.json["error"].startswith(message)
    assert memory_queue.sent_count == 0


def test_a_malformed_form_body_is_400(client: FlaskClient) -> None:
    body = b"payload=%ff%fe"

    response = post_webhook(client, body, github_headers(body, "workflow_job", content_type=FORM))

    assert response.status_code == 400
    assert response.json is not None
    assert response.json["error"].startswith("form body is not URL-encoded: ")


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_a_missing_github_header_is_400(client: FlaskClient, missing: str) -> None:
    body, headers = signed_delivery()
    del headers[missing]

    response = post_webhook(client, body, headers)

    assert (response.status_code, response.json) == (400, {"error": f"missing {missing} header"})
