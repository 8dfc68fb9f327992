"""The frontend against a real queue: Azurite up, Azurite stopped, and a queue that hangs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.azure_queue import AzureQueue
from common.envelope import MAX_MESSAGE_BYTES, Envelope, decode
from common.reduction import reduce_payload
from common.settings import StorageSettings
from frontend.app import create_app
from tests.conftest import unique_queue_name
from tests.frontend.deliveries import HOOK_ID, frontend_settings, github_headers, json_body
from tests.frontend.oversized import job_with_steps, run_with_huge_commit_message
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from tools.payloads import DELIVERY_ID, ORG_ID, RECEIVED_AT, workflow_run_payload

pytestmark = pytest.mark.azurite

# The frontend must answer well inside GitHub's 10 s; the bound with some slack.
UNAVAILABLE_BOUND_S = 6.0


def _client(storage: StorageSettings) -> FlaskClient:
    return create_app(frontend_settings(storage)).test_client()


def _read_back(storage: StorageSettings) -> list[tuple[str, Envelope]]:
    reader = AzureQueue(storage)
    try:
        messages = reader.receive(32, visibility_timeout_s=30)
    finally:
        reader.close()
    return [(message.content, decode(message.content)) for message in messages]


def test_a_signed_delivery_is_202_and_its_envelope_is_on_the_queue(
    storage_settings: StorageSettings,
) -> None:
    payload = workflow_run_payload("completed")
    body = json_body(payload)

    response = _client(storage_settings).post(
        "/webhook", data=body, headers=github_headers(body, "workflow_run")
    )

    assert response.status_code == 202
    [(_, envelope)] = _read_back(storage_settings)
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


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("workflow_run", run_with_huge_commit_message()),
        ("workflow_job", job_with_steps(1000)),
    ],
    ids=["run-with-1-mb-commit-message", "job-with-1000-steps"],
)
def test_oversized_deliveries_fit_one_message_and_are_accepted(
    storage_settings: StorageSettings, event: str, payload: dict[str, Any]
) -> None:
    body = json_body(payload)

    response = _client(storage_settings).post(
        "/webhook", data=body, headers=github_headers(body, event)
    )

    assert response.status_code == 202
    [(text, envelope)] = _read_back(storage_settings)
    assert len(text) <= MAX_MESSAGE_BYTES
    assert (envelope.event, envelope.truncated) == (event, False)
    assert envelope.payload == reduce_payload(event, payload)


def test_ready_follows_the_queue(private_azurite: Azurite) -> None:
    storage = StorageSettings(private_azurite.connection_string, None, unique_queue_name())
    client = _client(storage)

    assert client.get("/ready").status_code == 200
    private_azurite.stop()

    response = client.get("/ready")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "30")


def test_a_stopped_azurite_is_503_with_retry_after_within_the_bound(
    private_azurite: Azurite,
) -> None:
    storage = StorageSettings(private_azurite.connection_string, None, unique_queue_name())
    client = _client(storage)
    body = json_body(workflow_run_payload())
    headers = github_headers(body, "workflow_run")
    assert client.post("/webhook", data=body, headers=headers).status_code == 202
    private_azurite.stop()

    started = time.monotonic()
    response = client.post("/webhook", data=body, headers=headers)

    assert time.monotonic() - started < UNAVAILABLE_BOUND_S
    assert (response.status_code, response.json) == (
        503,
        {"error": "queue unavailable, retry later"},
    )
    assert response.headers["Retry-After"] == "30"


@pytest.fixture
def hanging_queue_port() -> Iterator[int]:
    """A port whose listener accepts connections (in the kernel) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.mark.slow
def test_a_queue_that_never_answers_is_503_within_the_bound(hanging_queue_port: int) -> None:
    endpoint = f"http://127.0.0.1:{hanging_queue_port}/{ACCOUNT_NAME}"
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"QueueEndpoint={endpoint};"
    )
    client = _client(StorageSettings(connection_string, None, unique_queue_name()))
    body = json_body(workflow_run_payload())

    started = time.monotonic()
    response = client.post("/webhook", data=body, headers=github_headers(body, "workflow_run"))

    assert time.monotonic() - started < UNAVAILABLE_BOUND_S
    assert (response.status_code, response.headers["Retry-After"]) == (503, "30")
