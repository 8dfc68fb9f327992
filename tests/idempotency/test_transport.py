"""One transaction contract, run against Azurite through both transports: the SDK's and ours."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ServiceRequestError
from azure.data.tables import TableClient, UpdateMode
from pytest_mock import MockerFixture

from backend.idempotency.batch import Operation, TransactionFailed
from backend.idempotency.layout import delete_op, replace_op
from backend.idempotency.store import LEDGER_TIMEOUTS
from backend.idempotency.transport import BatchTransport, SdkTransport
from common.azure_clients import ClientTimeouts, table_client
from common.azure_queue import error_code
from common.settings import StorageSettings
from tests.idempotency.conftest import unique_table_name
from tests.idempotency.rows import KEY, row
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, free_port

TABLE = "ledger"
Submit = Callable[[Sequence[Operation]], list[str]]
Transport = type[BatchTransport] | type[SdkTransport]


def closed_endpoint(port: int) -> str:
    """A connection string for the development account on a port nothing listens on."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


@pytest.fixture(params=[BatchTransport, SdkTransport], ids=["batch", "sdk"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """Each transport in turn: every test below holds for both."""
    chosen: Transport = request.param
    return chosen


@pytest.fixture
def responses() -> list[Any]:
    """Every response the client's raw_response_hook saw."""
    return []


def azurite_client(azurite: Azurite, responses: list[Any], table_name: str) -> TableClient:
    storage = StorageSettings(azurite.connection_string, None, "unused")
    return table_client(storage, table_name, LEDGER_TIMEOUTS, responses.append)


@pytest.fixture
def client(azurite: Azurite, responses: list[Any]) -> Iterator[TableClient]:
    """A ledger-configured client on a fresh table of its own."""
    client = azurite_client(azurite, responses, unique_table_name())
    client.create_table()
    responses.clear()
    yield client
    client.close()


@pytest.fixture
def submit(transport: Transport, client: TableClient) -> Submit:
    """The transport's submit on the fresh table."""
    return transport(client).submit


def stored(client: TableClient) -> dict[str, dict[str, Any]]:
    """Every row of the table by row key, as the SDK reads it."""
    return {entity["RowKey"]: dict(entity) for entity in client.list_entities()}


@pytest.mark.azurite
def test_inserted_rows_read_back_with_every_property_type(
    client: TableClient, submit: Submit
) -> None:
    later = datetime(2024, 5, 1, 14, 30, 0, 999999, tzinfo=timezone(timedelta(hours=-5)))
    keys = [KEY, "it's 50%", "workflow_run:9:completed", "x''y ünï (1)+2&3"]
    rows = [
        row(k, Count=n, Big=2**40 + n, Ratio=n / 4, Flag=n % 2 == 0, LeaseUntil=later)
        for n, k in enumerate(keys)
    ]

    etags = submit([("create", r, {}) for r in rows])

    for r, etag in zip(rows, etags, strict=True):
        entity = client.get_entity("00", r["RowKey"])
        assert entity.metadata["etag"] == etag
        read = {name: entity[name] for name in r}
        assert read.pop("Big").value == r["Big"]
        assert read == {name: value for name, value in r.items() if name != "Big"}
        assert entity["Big"].value == r["Big"]
        assert entity["LeaseUntil"] == later
        assert entity["LeaseUntil"].tzinfo is not None


@pytest.mark.azurite
def test_a_replace_needs_the_current_etag(client: TableClient, submit: Submit) -> None:
    (first,) = submit([("create", row(State="claimed"), {})])

    (second,) = submit([replace_op(row(State="done"), first)])
    assert second != first
    assert client.get_entity("00", KEY)["State"] == "done"

    with pytest.raises(TransactionFailed) as caught:
        submit([("upsert", row("other"), {}), replace_op(row(State="claimed"), first)])

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        412,
        "UpdateConditionNotSatisfied",
        1,
    )
    assert sorted(stored(client)) == [KEY]
    assert client.get_entity("00", KEY).metadata["etag"] == second


@pytest.mark.azurite
def test_an_insert_of_an_existing_row_fails_at_its_index_and_writes_nothing(
    client: TableClient, submit: Submit
) -> None:
    submit([("create", row(KEY), {})])

    with pytest.raises(TransactionFailed) as caught:
        submit([("create", row("a"), {}), ("create", row(KEY), {}), ("create", row("b"), {})])

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        409,
        "EntityAlreadyExists",
        1,
    )
    assert sorted(stored(client)) == [KEY]


@pytest.mark.azurite
def test_an_upsert_inserts_an_absent_row_and_merges_or_replaces_an_existing_one(
    client: TableClient, submit: Submit
) -> None:
    (inserted,) = submit([("upsert", row(Extra="kept"), {})])
    assert stored(client)[KEY]["Extra"] == "kept"

    (merged,) = submit([("upsert", row(State="done"), {"mode": "merge"})])
    assert (stored(client)[KEY]["State"], stored(client)[KEY]["Extra"]) == ("done", "kept")

    replaced = {"PartitionKey": "00", "RowKey": KEY, "State": "claimed"}
    (last,) = submit([("upsert", replaced, {"mode": UpdateMode.REPLACE})])
    assert stored(client)[KEY] == replaced
    assert len({inserted, merged, last}) == 3


@pytest.mark.azurite
def test_a_merge_with_an_etag_keeps_the_other_properties(
    client: TableClient, submit: Submit
) -> None:
    (etag,) = submit([("create", row(Extra="kept"), {})])
    merge = {
        "mode": UpdateMode.MERGE,
        "etag": etag,
        "match_condition": MatchConditions.IfNotModified,
    }

    (new_etag,) = submit([("update", row(State="done"), merge)])

    entity = client.get_entity("00", KEY)
    assert (entity["State"], entity["Extra"], entity.metadata["etag"]) == ("done", "kept", new_etag)


@pytest.mark.azurite
def test_a_delete_needs_the_current_etag(client: TableClient, submit: Submit) -> None:
    etags = submit([("create", row("a"), {}), ("create", row("b"), {})])

    with pytest.raises(TransactionFailed) as caught:
        submit([delete_op("00", "a", etags[1])])
    assert (caught.value.status_code, error_code(caught.value)) == (
        412,
        "UpdateConditionNotSatisfied",
    )

    upserted, deleted = submit([("upsert", row("c"), {}), delete_op("00", "a", etags[0])])
    assert (upserted != "", deleted) == (True, "")
    assert sorted(stored(client)) == ["b", "c"]

    with pytest.raises(TransactionFailed) as gone:
        submit([delete_op("00", "a", etags[0])])
    assert (gone.value.status_code, error_code(gone.value), gone.value.index) == (
        404,
        "ResourceNotFound",
        0,
    )


@pytest.mark.azurite
def test_a_full_transaction_of_one_hundred_rows(client: TableClient, submit: Submit) -> None:
    rows = [row(f"workflow_job:{n}:completed") for n in range(100)]

    etags = submit([("create", r, {}) for r in rows])

    # Rows written in the same instant may share an ETag: it is the row's timestamp.
    etag_of_row = {entity["RowKey"]: entity.metadata["etag"] for entity in client.list_entities()}
    assert etag_of_row == {r["RowKey"]: etag for r, etag in zip(rows, etags, strict=True)}


@pytest.mark.azurite
def test_a_missing_table_is_table_not_found(
    azurite: Azurite, responses: list[Any], transport: Transport
) -> None:
    with (
        azurite_client(azurite, responses, unique_table_name()) as client,
        pytest.raises(TransactionFailed) as caught,
    ):
        transport(client).submit([("create", row(), {})])

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        404,
        "TableNotFound",
        0,
    )


@pytest.mark.azurite
def test_a_refused_batch_fails_with_no_index(azurite: Azurite, transport: Transport) -> None:
    wrong_key = "A" * len(ACCOUNT_KEY.rstrip("=")) + "=="
    storage = StorageSettings(
        azurite.connection_string.replace(ACCOUNT_KEY, wrong_key), None, "unused"
    )

    with (
        table_client(storage, TABLE, replace(LEDGER_TIMEOUTS, retries=0), lambda _: None) as client,
        pytest.raises(TransactionFailed) as caught,
    ):
        transport(client).submit([("create", row(), {})])

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        403,
        "AuthorizationFailure",
        None,
    )


@pytest.mark.azurite
def test_the_response_hook_sees_one_response_per_transaction(
    responses: list[Any], submit: Submit
) -> None:
    submit([("create", row("a"), {}), ("create", row("b"), {})])
    assert len(responses) == 1

    with pytest.raises(TransactionFailed):
        submit([("create", row("a"), {})])
    assert len(responses) == 2
    assert responses[-1].http_response.status_code == 202


@pytest.mark.parametrize(
    ("operations", "error"),
    [([("create", row(LeaseUntil=datetime(2024, 5, 1)), {})], ValueError), ([], ValueError)],
    ids=["naive-datetime", "empty"],
)
def test_operations_the_table_cannot_take_are_refused_before_sending(
    transport: Transport, operations: list[Operation], error: type[Exception]
) -> None:
    sent: list[Any] = []
    client = table_client(
        StorageSettings(closed_endpoint(free_port()), None, "unused"),
        TABLE,
        LEDGER_TIMEOUTS,
        sent.append,
    )

    with client, pytest.raises(error):
        transport(client).submit(operations)
    assert sent == []


def test_an_unreachable_endpoint_raises_the_pipeline_error(transport: Transport) -> None:
    storage = StorageSettings(closed_endpoint(free_port()), None, "unused")
    timeouts = ClientTimeouts(connection_timeout_s=0.5, read_timeout_s=0.5, retries=0)

    with (
        table_client(storage, TABLE, timeouts, lambda _: None) as client,
        pytest.raises(ServiceRequestError) as caught,
    ):
        transport(client).submit([("create", row(), {})])

    assert not isinstance(caught.value, TransactionFailed)


@pytest.mark.azurite
def test_only_the_sdk_transport_calls_submit_transaction(
    transport: Transport, client: TableClient, mocker: MockerFixture
) -> None:
    spy = mocker.spy(client, "submit_transaction")

    etags = transport(client).submit([("create", row(), {})])

    assert spy.call_count == (1 if transport is SdkTransport else 0)
    assert etags == [client.get_entity("00", KEY).metadata["etag"]]


class EtaglessClient(TableClient):
    """A table client whose `submit_transaction` drops the ETags from what the service said."""

    def submit_transaction(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [{} for _ in super().submit_transaction(*args, **kwargs)]


@pytest.mark.azurite
def test_an_sdk_reply_without_etags_is_unreadable(azurite: Azurite) -> None:
    client = EtaglessClient.from_connection_string(azurite.connection_string, unique_table_name())
    client.create_table()

    with client, pytest.raises(TransactionFailed, match="unreadable") as caught:
        SdkTransport(client).submit([("create", row(), {})])

    failure = caught.value
    assert (failure.status_code, failure.error_code, failure.index) == (202, "", None)
