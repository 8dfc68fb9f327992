"""Status codes for bodies that are too large, unsupported, unqueueable, and Flask's own errors."""

from __future__ import annotations

import io
import json

import pytest
from flask.testing import FlaskClient
from gunicorn.http.errors import InvalidChunkSize

from common.memory_queue import InMemoryQueue
from tests.frontend.deliveries import github_headers, json_body, post_webhook, signed_delivery
from tests.frontend.oversized import noise
from tools.payloads import DELIVERY_ID, workflow_run_payload

MAX_BODY_BYTES = 25 * 1024 * 1024


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", None])
def test_other_content_types_are_415_before_the_signature(
    client: FlaskClient, content_type: str | None
) -> None:
    body, headers = signed_delivery()
    del headers["Content-Type"]
    headers["X-Hub-Signature-256"] = "garbage"
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = post_webhook(client, body, headers)

    shown = content_type.split(";")[0] if content_type else "(none)"
    assert (response.status_code, response.json) == (
        415,
        {
            "error": f"content type {shown} is not supported: "
            "send application/json or application/x-www-form-urlencoded"
        },
    )


def test_a_body_over_25_mb_is_413(client: FlaskClient) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)

    response = post_webhook(client, body, {"Content-Type": "application/json"})

    assert (response.status_code, response.json) == (413, {"error": "request body exceeds 25 MB"})


def test_a_content_length_over_25_mb_is_413_without_reading(client: FlaskClient) -> None:
    body, headers = signed_delivery()

    response = post_webhook(
        client, body, headers, environ_overrides={"CONTENT_LENGTH": str(MAX_BODY_BYTES + 1)}
    )

    assert (response.status_code, response.json) == (413, {"error": "request body exceeds 25 MB"})


def test_a_chunked_body_over_25_mb_is_413(client: FlaskClient) -> None:
    # A signature of the right shape: a missing one is refused before any byte is read.
    headers = {
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
        "X-Hub-Signature-256": "sha256=" + "0" * 64,
    }

    response = client.post(
        "/webhook",
        input_stream=io.BytesIO(b" " * (MAX_BODY_BYTES + 1)),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert (response.status_code, response.json) == (413, {"error": "request body exceeds 25 MB"})


def test_a_chunked_body_within_the_cap_is_accepted(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body, headers = signed_delivery()
    headers["Transfer-Encoding"] = "chunked"

    response = client.post(
        "/webhook",
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert (response.status_code, memory_queue.sent_count) == (202, 1)


def test_a_delivery_that_cannot_fit_a_queue_message_is_413(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body = json_body(workflow_run_payload(head_sha=noise("sha", 200_000)))

    response = post_webhook(client, body, github_headers(body, "workflow_run"))

    assert response.status_code == 413
    assert response.json is not None
    assert response.json["error"].startswith(
        f"delivery too large to queue: workflow_run delivery {DELIVERY_ID} takes "
    )
    assert memory_queue.sent_count == 0


def test_an_unavailable_queue_is_503_with_retry_after(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    memory_queue.unavailable = True
    body, headers = signed_delivery()

    response = post_webhook(client, body, headers)

    assert (response.status_code, response.json) == (
        503,
        {"error": "queue unavailable, retry later"},
    )
    assert response.headers["Retry-After"] == "30"


def test_unknown_paths_are_404_json(client: FlaskClient) -> None:
    response = client.get("/nowhere")

    assert (response.status_code, response.json) == (
        404,
        {
            "error": "not found: The requested URL was not found on the server. If you entered "
            "the URL manually please check your spelling and try again."
        },
    )


def test_a_wrong_method_is_405_json_with_allow(client: FlaskClient) -> None:
    response = client.get("/webhook")

    assert (response.status_code, response.json) == (
        405,
        {"error": "method not allowed: The method is not allowed for the requested URL."},
    )
    assert response.content_type == "application/json"
    assert sorted(response.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]


def test_an_unexpected_failure_is_a_500_json(
    client: FlaskClient, memory_queue: InMemoryQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(content: str) -> str:
        raise RuntimeError("a bug, not the client's fault")

    monkeypatch.setattr(memory_queue, "send", broken)
    body, headers = signed_delivery()

    response = post_webhook(client, body, headers)

    assert response.status_code == 500
    assert json.loads(response.data) == {
        "error": "internal server error: The server encountered an internal error and was "
        "unable to complete your request. Either the server is overloaded or there is an "
        "error in the application."
    }


class _BadChunks:
    """A server's body stream whose chunked framing turns out malformed mid-read."""

    def read(self, size: int = -1) -> bytes:
        raise InvalidChunkSize(b"-5")


def test_a_body_framing_the_server_refuses_while_read_is_a_json_400(client: FlaskClient) -> None:
    body, headers = signed_delivery()

    response = client.post(
        "/webhook",
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": _BadChunks(), "wsgi.input_terminated": True},
    )

    assert response.status_code == 400
    assert response.json == {"error": "malformed request body: Invalid chunk size: b'-5'"}
