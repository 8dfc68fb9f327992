"""The frontend against a queue endpoint that misbehaves: a bare 404, a queue error of any kind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from common.memory_queue import InMemoryQueue
from common.queue import MessageGone, QueueUnavailable
from common.settings import StorageSettings
from frontend.app import connect_queue, create_app
from tests.frontend.deliveries import frontend_settings, post_webhook, signed_delivery
from tests.storage_server import NOT_FOUND, storage_server

SECRET_KEY = "a2V5LXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ="


@pytest.mark.parametrize("packing", [True, False], ids=["packing", "one-per-message"])
def test_an_endpoint_answering_a_bare_404_is_503_on_webhook_and_ready(packing: bool) -> None:
    with storage_server(NOT_FOUND) as server:
        storage = StorageSettings(server.connection_string, None, "hooks")
        app = create_app(replace(frontend_settings(storage), packing=packing))
        test_client = app.test_client()
        body, headers = signed_delivery()

        webhook = post_webhook(test_client, body, headers)
        ready = test_client.get("/ready")

    for response in (webhook, ready):
        assert (response.status_code, response.json, response.headers["Retry-After"]) == (
            503,
            {"error": "queue unavailable, retry later"},
            "30",
        )


class GoneQueue(InMemoryQueue):
    """A queue whose every call says the message is gone, which a send never should."""

    def send(self, content: str) -> str:
        raise MessageGone("404 MessageNotFound")

    def ping(self) -> None:
        raise MessageGone("404 MessageNotFound")


def test_any_queue_error_is_503_with_retry_after() -> None:
    client = create_app(frontend_settings(), queue=GoneQueue()).test_client()
    body, headers = signed_delivery()

    webhook = post_webhook(client, body, headers)
    ready = client.get("/ready")

    for response in (webhook, ready):
        assert (response.status_code, response.headers["Retry-After"]) == (503, "30")


def test_a_queue_client_that_cannot_be_built_is_unavailable_and_never_quotes_the_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> InMemoryQueue:
        raise ValueError(f"Invalid connection string {SECRET_KEY}")

    monkeypatch.setattr("frontend.app.AzureQueue", broken)

    queue = connect_queue(StorageSettings("AccountName=foo", None, "hooks"))

    for call in (lambda: queue.send("text"), queue.ping):
        with pytest.raises(QueueUnavailable) as raised:
            call()
        assert str(raised.value) == "the queue client cannot be built (ValueError)"
    assert caplog.messages == ["queue hooks: the queue client cannot be built (ValueError)"]


@pytest.mark.parametrize("packing", [True, False], ids=["packing", "one-per-message"])
def test_settings_that_bypass_the_checks_still_answer_503(packing: bool) -> None:
    storage = StorageSettings("AccountName=foo", None, "hooks")
    client = create_app(replace(frontend_settings(storage), packing=packing)).test_client()
    body, headers = signed_delivery()

    webhook = post_webhook(client, body, headers)
    ready = client.get("/ready")

    assert (webhook.status_code, ready.status_code) == (503, 503)
