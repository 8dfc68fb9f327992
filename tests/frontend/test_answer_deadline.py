"""Every answer within its deadline from the request's arrival, as the server reports it."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from common.memory_queue import InMemoryQueue
from common.settings import SettingsError
from frontend.app import create_app
from frontend.settings import load_frontend_settings
from frontend.state import close_sender
from tests.frontend.deliveries import frontend_settings, post_webhook, signed_delivery

AGE = "X-Frontend-Request-Age"


def test_a_request_that_waited_past_its_deadline_is_shed_without_touching_the_queue(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body, headers = signed_delivery()

    response = post_webhook(client, body, {**headers, AGE: "5.6"})

    assert (response.status_code, response.headers["Retry-After"]) == (503, "30")
    assert memory_queue.sent_count == 0


def test_a_request_within_its_deadline_is_queued(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    body, headers = signed_delivery()

    response = post_webhook(client, body, {**headers, AGE: "5.0"})

    assert response.status_code == 202
    assert memory_queue.sent_count == 1


@pytest.mark.parametrize("age", ["soon", "-1", "nan", "99999"])
def test_an_age_that_is_not_one_counts_as_none(
    client: FlaskClient, memory_queue: InMemoryQueue, age: str
) -> None:
    body, headers = signed_delivery()

    assert post_webhook(client, body, {**headers, AGE: age}).status_code == 202


class _HungQueue(InMemoryQueue):
    """A queue whose sends never return within a test."""

    def send(self, content: str) -> str:
        time.sleep(3)
        return super().send(content)


def test_the_wait_for_the_queue_is_what_is_left_of_the_deadline() -> None:
    settings = replace(frontend_settings(), answer_deadline_s=1.0, packing=False)
    app = create_app(settings, queue=_HungQueue())
    body, headers = signed_delivery()
    try:
        started = time.monotonic()
        response = post_webhook(app.test_client(), body, {**headers, AGE: "0.6"})
        waited_s = time.monotonic() - started
    finally:
        close_sender(app)

    assert response.status_code == 503
    assert 0.3 <= waited_s < 0.9


def test_the_deadlines_are_settings_with_bounds() -> None:
    base = {
        "GITHUB_WEBHOOK_SECRET": "s",
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }
    settings = load_frontend_settings(
        {**base, "FRONTEND_READ_DEADLINE_SECONDS": "3", "FRONTEND_ANSWER_DEADLINE_SECONDS": "4.5"}
    )

    assert (settings.read_deadline_s, settings.answer_deadline_s) == (3.0, 4.5)
    with pytest.raises(SettingsError, match="FRONTEND_ANSWER_DEADLINE_SECONDS"):
        load_frontend_settings({**base, "FRONTEND_ANSWER_DEADLINE_SECONDS": "12"})
