"""Fixtures for the GitHub commands: the REST stand-in, settings pointing at it, a client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.github.client import GitHubApi, RateBudget, Target, connect
from backend.github.settings import GitHubSettings
from backend.idempotency.records import InMemoryRecords
from common.settings import StorageSettings
from tests.github.standin import TOKEN, Running, StandIn, serve
from tools.payloads import ORG_LOGIN, REPO_NAME, repository

REPO = Target("repo", ORG_LOGIN, REPO_NAME)


@pytest.fixture
def github() -> Iterator[Running]:
    """A running stand-in holding the test repository and nothing else yet."""
    yield from serve(StandIn(repository=repository()))


@pytest.fixture
def settings(github: Running) -> GitHubSettings:
    """Token settings for the stand-in, with no pacing between redeliveries."""
    return GitHubSettings(api_url=github.url, token=TOKEN, redelivery_interval_s=0.0)


@pytest.fixture
def app_key_file(tmp_path: Path) -> Path:
    """A freshly generated RSA private key in PEM, as GitHub hands an App's key out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def records() -> InMemoryRecords:
    return InMemoryRecords()


def client(settings: GitHubSettings, target: Target = REPO) -> GitHubApi:
    """A client for `target` over the stand-in, waiting on nothing."""
    return connect(settings, target, RateBudget(reserve=0, sleep=lambda _s: None))


@pytest.fixture
def storage_env(storage_settings: StorageSettings) -> dict[str, str]:
    """The environment naming the session Azurite, with a queue and ledger table of its own."""
    return {
        "AZURE_STORAGE_CONNECTION_STRING": storage_settings.connection_string or "",
        "AZURE_STORAGE_QUEUE_NAME": storage_settings.queue_name,
        "LEDGER_TABLE_NAME": f"ledger{uuid.uuid4().hex[:16]}",
    }
