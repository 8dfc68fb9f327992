"""The one builder of storage clients: which credential, which endpoint, and its time bounds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ServiceResponseError
from azure.identity import DefaultAzureCredential

from common.azure_clients import ClientTimeouts, endpoint, queue_client, table_client
from common.settings import StorageSettings
from tests.storage_server import TRICKLE, TRICKLE_INTERVAL_S, storage_server
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME

TIMEOUTS = ClientTimeouts(connection_timeout_s=1.0, read_timeout_s=0.1, retries=2)


def build_queue(storage: StorageSettings) -> Any:
    """A queue client on the queue "hooks"."""
    return queue_client(storage, "hooks", TIMEOUTS)


def build_table(storage: StorageSettings) -> Any:
    """A table client on the table "ledger"."""
    return table_client(storage, "ledger", TIMEOUTS, lambda _response: None)


# A read of the queue's or the table's properties: a call the SDK may retry after a timeout.
READS = [
    pytest.param(build_queue, lambda client: client.get_queue_properties(), id="queue"),
    pytest.param(build_table, lambda client: client.get_table_access_policy(), id="table"),
]


def test_endpoints_are_the_account_s_public_ones() -> None:
    assert endpoint("acct", "queue") == "https://acct.queue.core.windows.net"
    assert endpoint("acct", "table") == "https://acct.table.core.windows.net"


@pytest.mark.parametrize(
    ("build", "url"),
    [
        (build_queue, "https://acct.queue.core.windows.net/hooks"),
        (build_table, "https://acct.table.core.windows.net"),
    ],
)
def test_an_account_name_alone_reaches_its_endpoint_with_entra_id(
    build: Callable[[StorageSettings], Any], url: str
) -> None:
    with build(StorageSettings(None, "acct", "hooks")) as client:
        assert client.url == url
        assert isinstance(client.credential, DefaultAzureCredential)


@pytest.mark.parametrize(
    ("build", "url"),
    [
        (build_queue, "http://127.0.0.1:10001/devstoreaccount1/hooks"),
        (build_table, "http://127.0.0.1:10002/devstoreaccount1"),
    ],
)
def test_a_connection_string_wins_over_an_account_name(
    build: Callable[[StorageSettings], Any], url: str
) -> None:
    storage = StorageSettings("UseDevelopmentStorage=true", "acct", "hooks")

    with build(storage) as client:
        assert client.url == url
        assert not isinstance(client.credential, DefaultAzureCredential)


def test_a_table_client_from_a_connection_string_signs_with_the_account_key() -> None:
    with build_table(StorageSettings("UseDevelopmentStorage=true", None, "hooks")) as client:
        assert isinstance(client.credential, AzureNamedKeyCredential)
        assert client.credential.named_key.name == ACCOUNT_NAME


@pytest.mark.parametrize(("build", "read"), READS)
def test_the_read_timeout_and_the_retries_bound_every_call(
    build: Callable[[StorageSettings], Any], read: Callable[[Any], object]
) -> None:
    with storage_server(TRICKLE) as server:
        port = server.server_address[1]
        connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
            f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
        )
        with build(StorageSettings(connection_string, None, "hooks")) as client:
            started = time.monotonic()
            with pytest.raises(ServiceResponseError):
                read(client)
            elapsed_s = time.monotonic() - started

    assert server.requests == 1 + TIMEOUTS.retries
    # Each attempt gave up before the first byte of its answer.
    assert elapsed_s < server.requests * TRICKLE_INTERVAL_S
