"""Fixtures of the frontend tests: an app over the in-memory queue and its test client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common.memory_queue import InMemoryQueue
from frontend.app import create_app
from frontend.state import close_sender
from tests.frontend.deliveries import frontend_settings


@pytest.fixture
def memory_queue() -> InMemoryQueue:
    """The queue the app sends to."""
    return InMemoryQueue()


@pytest.fixture
def app(memory_queue: InMemoryQueue) -> Iterator[Flask]:
    """The frontend over the in-memory queue; its sender threads end with the test."""
    app = create_app(frontend_settings(), queue=memory_queue)
    yield app
    close_sender(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the frontend."""
    return app.test_client()
