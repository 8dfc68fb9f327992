"""Storage endpoints in the settings, the token endpoint's protocol, and Azurite checking tokens."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential

from common.azure_clients import ClientTimeouts, queue_client, service_url, table_client
from common.azure_queue import AzureQueue
from common.queue import QueueUnavailable
from common.settings import SettingsError, StorageSettings, load_storage_settings
from tests.identity.fixtures import BACKEND_CLIENT_ID, IDENTITIES
from tests.identity.token_server import ISSUER, TokenServer, claims_of, token_server

STORAGE_SCOPE = "https://storage.azure.com/.default"
TIMEOUTS = ClientTimeouts(connection_timeout_s=5.0, read_timeout_s=10.0)


@pytest.mark.parametrize("prefix", ["", "BACKEND_"])
def test_endpoints_are_read_with_the_service_prefix_first(prefix: str) -> None:
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "acct",
        "AZURE_STORAGE_QUEUE_ENDPOINT": "https://plain.example/q",
        f"{prefix}AZURE_STORAGE_QUEUE_ENDPOINT": "https://acct.queue.core.usgovcloudapi.net/",
        f"{prefix}AZURE_STORAGE_TABLE_ENDPOINT": "https://acct.table.core.usgovcloudapi.net",
    }

    storage = load_storage_settings(env, prefix)

    assert (storage.queue_endpoint, storage.table_endpoint) == (
        "https://acct.queue.core.usgovcloudapi.net/",
        "https://acct.table.core.usgovcloudapi.net",
    )
    assert service_url(storage, "queue") == "https://acct.queue.core.usgovcloudapi.net"


def test_without_endpoints_the_public_cloud_s_are_used() -> None:
    storage = load_storage_settings({"AZURE_STORAGE_ACCOUNT_NAME": "acct"})

    assert (storage.queue_endpoint, storage.table_endpoint) == (None, None)
    assert [service_url(storage, s) for s in ("queue", "table")] == [
        "https://acct.queue.core.windows.net",
        "https://acct.table.core.windows.net",
    ]


@pytest.mark.parametrize("value", ["acct.queue.core.windows.net", "ftp://host/x", "https://"])
def test_an_endpoint_that_is_no_url_stops_the_service_naming_the_variable(value: str) -> None:
    env = {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "BACKEND_AZURE_STORAGE_TABLE_ENDPOINT": value}

    with pytest.raises(SettingsError, match="^BACKEND_AZURE_STORAGE_TABLE_ENDPOINT must be a full"):
        load_storage_settings(env, "BACKEND_")


def test_clients_are_built_on_the_configured_endpoints() -> None:
    storage = StorageSettings(
        None, "acct", "hooks", "https://q.example/acct/", "https://t.example/acct"
    )

    with queue_client(storage, "hooks", TIMEOUTS) as queue:
        assert queue.url == "https://q.example/acct/hooks"
    with table_client(storage, "ledger", TIMEOUTS, lambda _response: None) as table:
        assert table.url.startswith("https://t.example/acct")


def test_a_token_carries_the_claims_azurite_checks(identity_endpoint: TokenServer) -> None:
    before = int(time.time())

    token = identity_endpoint.issue("https://storage.azure.com", BACKEND_CLIENT_ID)
    claims = claims_of(token["access_token"])

    assert (claims["aud"], claims["iss"], claims["appid"]) == (
        "https://storage.azure.com",
        ISSUER,
        BACKEND_CLIENT_ID,
    )
    assert claims["nbf"] <= claims["iat"] <= claims["exp"] - 3600 + 1
    assert before <= claims["iat"] <= int(time.time())
    assert token["expires_on"] == str(claims["exp"])


def test_the_sdk_gets_a_token_for_the_identity_it_names(
    managed_identity: TokenServer,
) -> None:
    credential = ManagedIdentityCredential(client_id=BACKEND_CLIENT_ID)

    token = credential.get_token(STORAGE_SCOPE)

    assert claims_of(token.token)["aud"] == "https://storage.azure.com"
    assert managed_identity.issued[-1].client_id == BACKEND_CLIENT_ID


@pytest.mark.parametrize(
    ("header", "client_id"),
    [("wrong-secret", BACKEND_CLIENT_ID), (None, "00000000-0000-0000-0000-000000000000")],
    ids=["wrong-identity-header", "unknown-identity"],
)
def test_the_endpoint_refuses_a_wrong_header_or_an_unknown_identity(
    monkeypatch: pytest.MonkeyPatch,
    managed_identity: TokenServer,
    header: str | None,
    client_id: str,
) -> None:
    if header is not None:
        monkeypatch.setenv("IDENTITY_HEADER", header)
    refused_before = managed_identity.refused

    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=client_id).get_token(STORAGE_SCOPE)

    assert managed_identity.refused > refused_before


def test_azurite_refuses_an_expired_token(
    monkeypatch: pytest.MonkeyPatch, oauth_storage_settings: StorageSettings
) -> None:
    # Given an identity endpoint whose tokens expired a minute ago
    with token_server(IDENTITIES, lifetime_s=-60) as stale:
        for name, value in stale.environment().items():
            monkeypatch.setenv(name, value)
        queue = AzureQueue(oauth_storage_settings)

        # When the queue is called with one, then Azurite refuses it: tokens are really checked
        with pytest.raises(QueueUnavailable, match="403"):
            queue.send("never")
        queue.close()


def test_a_key_is_not_needed_nor_used(oauth_storage_settings: StorageSettings) -> None:
    queue = AzureQueue(oauth_storage_settings)
    queue.send("tokens only")

    assert oauth_storage_settings.connection_string is None
    assert type(queue._queue.credential).__name__ == "DefaultAzureCredential"
    assert [m.content for m in queue.receive(32, visibility_timeout_s=30)] == ["tokens only"]
    queue.close()
