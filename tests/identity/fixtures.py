"""Fixtures for running on Entra ID tokens with no key: a token endpoint and Azurite in OAuth mode.

`tests/conftest.py` imports them, so any test can ask for `oauth_storage_settings` (storage
settings with an account name and endpoints, no connection string) or `managed_identity` (the
environment an app in Container Apps has). Both identities of the deployment exist at the
endpoint; the environment names the backend's, as `AZURE_CLIENT_ID` does in Azure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from common.settings import StorageSettings
from tests.identity.certificate import Certificate, self_signed
from tests.identity.token_server import TokenServer, token_server
from tools.azurite import ACCOUNT_NAME, Azurite, AzuriteError

FRONTEND_CLIENT_ID = "5d1f3b9e-0c4a-4f7e-9a51-1f0e6c2b7a10"
BACKEND_CLIENT_ID = "b7e2c8a4-3f61-4d0b-8e95-6a2f1c9d4e73"
IDENTITIES = {
    FRONTEND_CLIENT_ID: "0b6f6c4e-8a4f-4b7b-9a3e-2d1c5e7f9a01",
    BACKEND_CLIENT_ID: "9c3e1a7d-5b2f-4e8c-a6d4-7f1b3e5c9d02",
}
# Variables through which another credential than the managed identity could answer.
_OTHER_CREDENTIALS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "MSI_ENDPOINT",
    "IDENTITY_SERVER_THUMBPRINT",
)


@pytest.fixture(scope="session")
def loopback_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The session's self-signed certificate for 127.0.0.1."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def identity_endpoint() -> Iterator[TokenServer]:
    """The session's managed-identity endpoint, knowing both apps' identities."""
    with token_server(IDENTITIES) as server:
        yield server


@pytest.fixture(scope="session")
def oauth_azurite(loopback_certificate: Certificate) -> Iterator[Azurite]:
    """An Azurite serving HTTPS that accepts bearer tokens (`--oauth basic`)."""
    instance = Azurite(
        cert=loopback_certificate.cert_path, key=loopback_certificate.key_path, oauth=True
    )
    try:
        instance.start()
    except AzuriteError as error:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"Azurite could not start under CI: {error}")
        pytest.skip(f"Azurite could not start (run `make install`): {error}")
    try:
        yield instance
    finally:
        instance.stop()


def identity_environment(
    server: TokenServer, certificate: Certificate, client_id: str = BACKEND_CLIENT_ID
) -> dict[str, str]:
    """What an app with the user-assigned identity `client_id` finds in its environment.

    Plus the CA bundle that makes the loopback certificate trusted.
    """
    return {
        **server.environment(),
        "AZURE_CLIENT_ID": client_id,
        "REQUESTS_CA_BUNDLE": str(certificate.cert_path),
    }


@pytest.fixture
def managed_identity(
    monkeypatch: pytest.MonkeyPatch,
    identity_endpoint: TokenServer,
    loopback_certificate: Certificate,
) -> TokenServer:
    """This process runs as the backend's identity, as in Container Apps; returns the endpoint."""
    for name in _OTHER_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    for name, value in identity_environment(identity_endpoint, loopback_certificate).items():
        monkeypatch.setenv(name, value)
    return identity_endpoint


def oauth_storage(azurite: Azurite, queue_name: str | None = None) -> StorageSettings:
    """Storage settings on `azurite` with no key: account name and service endpoints only."""
    return StorageSettings(
        connection_string=None,
        account_name=ACCOUNT_NAME,
        queue_name=queue_name or f"oauth-{uuid.uuid4().hex[:20]}",
        queue_endpoint=azurite.queue_endpoint,
        table_endpoint=azurite.table_endpoint,
    )


@pytest.fixture
def oauth_storage_settings(
    managed_identity: TokenServer, oauth_azurite: Azurite
) -> StorageSettings:
    """Storage settings of a queue of this test's own, reached with the backend's identity."""
    return oauth_storage(oauth_azurite)
