"""Which transport the ledger takes: the hand-written one on the pinned SDK, else the SDK's."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from azure.data.tables import TableClient

from backend.idempotency import LedgerSettings, TableLedger
from backend.idempotency.transport import (
    FAST_PATH_ATTRIBUTES,
    BatchTransport,
    SdkTransport,
    choose_transport,
    missing_attributes,
)
from common.settings import StorageSettings
from tests.idempotency.conftest import unique_table_name
from tests.idempotency.test_transport import TABLE, closed_endpoint
from tools.azurite import ACCOUNT_NAME, free_port

TRANSPORT_LOG = "backend.idempotency.transport"


class MovedClient(TableClient):
    """A real TableClient as a later SDK release might shape it: `moved` is no longer there."""

    moved = ""

    def __getattribute__(self, name: str) -> Any:
        if name != "moved" and name == super().__getattribute__("moved"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return super().__getattribute__(name)


def moved_client(name: str) -> MovedClient:
    client = MovedClient.from_connection_string(closed_endpoint(free_port()), TABLE)
    assert isinstance(client, MovedClient)
    client.moved = name
    return client


def test_the_pinned_sdk_has_what_the_hand_written_path_uses() -> None:
    port = free_port()
    client = TableClient.from_connection_string(closed_endpoint(port), TABLE)

    assert missing_attributes(client) == []
    assert client.scheme == "http"
    assert client._primary_hostname == f"127.0.0.1:{port}/{ACCOUNT_NAME}"
    assert client.table_name == TABLE
    assert client.api_version == "2019-02-02"
    assert callable(client._client.send_request)


@pytest.mark.parametrize("name", FAST_PATH_ATTRIBUTES)
def test_a_moved_attribute_falls_back_to_the_sdk_and_says_why(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = moved_client(name)

    with caplog.at_level(logging.INFO, logger=TRANSPORT_LOG):
        transport = choose_transport(client)

    # Some properties read others (api_version reads _client): all missing ones are named.
    missing = missing_attributes(client)
    assert isinstance(transport, SdkTransport)
    assert name in missing
    table = "?" if name == "table_name" else TABLE
    assert caplog.messages == [
        f"ledger table {table}: transactions through the SDK's submit_transaction, slower: "
        f"TableClient has no {', '.join(missing)}"
    ]
    assert caplog.records[0].levelno == logging.WARNING


def test_a_client_with_everything_takes_the_hand_written_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=TRANSPORT_LOG):
        transport = choose_transport(moved_client(""))

    assert isinstance(transport, BatchTransport)
    assert caplog.messages == [
        f"ledger table {TABLE}: transactions through the hand-written $batch"
    ]


@pytest.mark.parametrize(
    ("fast", "expected"), [(True, BatchTransport), (False, SdkTransport)], ids=["fast", "sdk"]
)
def test_the_ledger_chooses_once_when_it_is_built(
    fast: bool, expected: type[Any], caplog: pytest.LogCaptureFixture
) -> None:
    storage = StorageSettings(closed_endpoint(free_port()), None, "unused")
    table_name = unique_table_name()

    with caplog.at_level(logging.INFO, logger=TRANSPORT_LOG):
        ledger = TableLedger(storage, LedgerSettings(table_name=table_name), fast_transactions=fast)

    assert isinstance(ledger._transport, expected)
    assert caplog.messages == [f"ledger table {table_name}: transactions through {expected.name}"]
    ledger.close()
