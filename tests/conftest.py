"""Session fixtures: one Azurite for the whole run, a fresh queue name per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.settings import StorageSettings
from tests.identity.fixtures import (  # noqa: F401 (fixtures for every test)
    identity_endpoint,
    loopback_certificate,
    managed_identity,
    oauth_azurite,
    oauth_storage_settings,
)
from tools.azurite import Azurite, AzuriteError


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def start_azurite_or_skip() -> Azurite:
    """Start an Azurite; under CI a failure fails the test instead of skipping it."""
    try:
        return Azurite().start()
    except AzuriteError as error:
        if _in_ci():
            pytest.fail(f"Azurite could not start under CI: {error}")
        pytest.skip(f"Azurite could not start (run `make install`): {error}")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """The test session's Azurite, started once and stopped at the end."""
    instance = start_azurite_or_skip()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def private_azurite() -> Iterator[Azurite]:
    """An Azurite of this test's own, which the test may stop to simulate an outage."""
    instance = start_azurite_or_skip()
    try:
        yield instance
    finally:
        instance.stop()


def unique_queue_name(prefix: str = "test") -> str:
    """A valid queue name (lowercase, 3-63 chars) unique to one test."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


@pytest.fixture
def storage_settings(azurite: Azurite) -> StorageSettings:
    """Storage settings pointing at the session Azurite with a queue of this test's own."""
    return StorageSettings(
        connection_string=azurite.connection_string,
        account_name=None,
        queue_name=unique_queue_name(),
    )
