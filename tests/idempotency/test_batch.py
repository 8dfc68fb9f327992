"""Entity group transactions written and read as plain text: the body, the reply, and Azurite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.data.tables import TableClient, UpdateMode

from backend.idempotency.batch import (
    Operation,
    TransactionFailed,
    build_body,
    read_reply,
    submit_transaction,
)
from backend.idempotency.layout import delete_op, replace_op
from backend.idempotency.table import LEDGER_TIMEOUTS
from common.azure_clients import ClientTimeouts, table_client
from common.azure_queue import error_code
from common.settings import StorageSettings
from tests.idempotency.conftest import unique_table_name
from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite, free_port

BASE = "https://acct.table.core.windows.net"
TABLE = "ledger"
BATCH = "batch_11111111-1111-1111-1111-111111111111"
CHANGESET = "changeset_22222222-2222-2222-2222-222222222222"
KEY = "workflow_job:123:completed"
URL_KEY = "workflow_job%3A123%3Acompleted"
ETAG = "W/\"datetime'2024-05-01T10%3A00%3A00.1234567Z'\""
ETAG_2 = "W/\"datetime'2024-05-01T10%3A00%3A01.0000000Z'\""
T0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
IF_MATCH = {"etag": ETAG, "match_condition": MatchConditions.IfNotModified}


def row(key: str = KEY, partition: str = "00", **properties: Any) -> dict[str, Any]:
    """A ledger row as layout.to_row writes it, with `properties` on top."""
    base = {"State": "claimed", "Owner": "worker-7", "LeaseUntil": T0, "UpdatedAt": T0}
    return {"PartitionKey": partition, "RowKey": key, **base, **properties}


def body_of(*operations: Operation) -> str:
    return build_body(BASE, TABLE, list(operations), BATCH, CHANGESET)


def requests_in(body: str) -> list[str]:
    """The HTTP requests a body's changeset parts carry."""
    parts = body.split(f"--{CHANGESET}")[1:-1]
    prefix = "\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    assert all(part.startswith(prefix) and part.endswith("\r\n") for part in parts)
    return [part[len(prefix) : -2] for part in parts]


def head_and_payload(request: str) -> tuple[list[str], str]:
    head, _, payload = request.partition("\r\n\r\n")
    return head.split("\r\n"), payload


# The request body.


def test_a_body_holds_one_changeset_of_every_operation_in_order() -> None:
    body = body_of(("create", row(State="claimed"), {}), delete_op("00", "other", ETAG))

    assert body == (
        f"--{BATCH}\r\n"
        f"Content-Type: multipart/mixed; boundary={CHANGESET}\r\n"
        "\r\n"
        f"--{CHANGESET}\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "\r\n"
        f"POST {BASE}/ledger HTTP/1.1\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json;odata=minimalmetadata\r\n"
        "DataServiceVersion: 3.0\r\n"
        "Prefer: return-no-content\r\n"
        "\r\n"
        '{"PartitionKey":"00","RowKey":"workflow_job:123:completed","State":"claimed",'
        '"Owner":"worker-7","LeaseUntil@odata.type":"Edm.DateTime",'
        '"LeaseUntil":"2024-05-01T10:00:00.123456Z","UpdatedAt@odata.type":"Edm.DateTime",'
        '"UpdatedAt":"2024-05-01T10:00:00.123456Z"}\r\n'
        f"--{CHANGESET}\r\n"
        "Content-Type: application/http\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        "\r\n"
        f"DELETE {BASE}/ledger(PartitionKey='00',RowKey='other') HTTP/1.1\r\n"
        "Accept: application/json;odata=minimalmetadata\r\n"
        "DataServiceVersion: 3.0\r\n"
        f"If-Match: {ETAG}\r\n"
        "\r\n"
        "\r\n"
        f"--{CHANGESET}--\r\n"
        f"--{BATCH}--\r\n"
    )
    assert "\n" not in body.replace("\r\n", "")


ENTITY_URL = f"{BASE}/ledger(PartitionKey='00',RowKey='{URL_KEY}')"


@pytest.mark.parametrize(
    ("operation", "request_line", "if_match"),
    [
        (("create", row(), {}), f"POST {BASE}/ledger HTTP/1.1", None),
        (replace_op(row(), ETAG), f"PUT {ENTITY_URL} HTTP/1.1", ETAG),
        (
            ("update", row(), {"mode": UpdateMode.MERGE, **IF_MATCH}),
            f"MERGE {ENTITY_URL} HTTP/1.1",
            ETAG,
        ),
        (("update", row(), {"mode": UpdateMode.REPLACE}), f"PUT {ENTITY_URL} HTTP/1.1", "*"),
        (("upsert", row(), {}), f"MERGE {ENTITY_URL} HTTP/1.1", None),
        (("upsert", row(), {"mode": UpdateMode.MERGE}), f"MERGE {ENTITY_URL} HTTP/1.1", None),
        (("upsert", row(), {"mode": UpdateMode.REPLACE}), f"PUT {ENTITY_URL} HTTP/1.1", None),
        (delete_op("00", KEY, ETAG), f"DELETE {ENTITY_URL} HTTP/1.1", ETAG),
    ],
    ids=[
        "create",
        "replace",
        "merge",
        "replace-any",
        "upsert",
        "upsert-merge",
        "upsert-replace",
        "delete",
    ],
)
def test_each_kind_has_its_request_line_and_condition(
    operation: Operation, request_line: str, if_match: str | None
) -> None:
    (request,) = requests_in(body_of(operation))
    head, payload = head_and_payload(request)

    assert head[0] == request_line
    conditions = [line for line in head if line.startswith("If-Match: ")]
    assert conditions == ([] if if_match is None else [f"If-Match: {if_match}"])
    assert ("Prefer: return-no-content" in head) == (operation[0] == "create")
    if operation[0] == "delete":
        assert payload == ""
        assert not any(line.startswith("Content-Type") for line in head)
    else:
        assert json.loads(payload)["RowKey"] == KEY
        assert "Content-Type: application/json" in head


@pytest.mark.parametrize(
    ("partition", "key", "in_url"),
    [
        ("00", "it's", "PartitionKey='00',RowKey='it%27%27s'"),
        ("a'b", "50% off", "PartitionKey='a%27%27b',RowKey='50%25%20off'"),
        ("00", "ünï+x&y=(1)", "PartitionKey='00',RowKey='%C3%BCn%C3%AF%2Bx%26y%3D%281%29'"),
    ],
)
def test_keys_in_urls_double_their_quotes_and_are_percent_encoded(
    partition: str, key: str, in_url: str
) -> None:
    (request,) = requests_in(body_of(replace_op(row(key, partition), ETAG)))

    assert request.startswith(f"PUT {BASE}/ledger({in_url}) HTTP/1.1\r\n")
    assert json.loads(head_and_payload(request)[1])["RowKey"] == key


def test_property_values_are_typed_as_the_sdk_reads_them() -> None:
    plus_two = timezone(timedelta(hours=2))
    entity = {
        "PartitionKey": "00",
        "RowKey": KEY,
        "Text": "done",
        "Flag": False,
        "Small": -(2**31),
        "Large": 2**31,
        "Ratio": 0.25,
        "Missing": float("nan"),
        "Up": float("inf"),
        "Down": float("-inf"),
        "Local": datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=plus_two),
        "Whole": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
        "Nothing": None,
    }
    (request,) = requests_in(body_of(("upsert", entity, {})))

    assert json.loads(head_and_payload(request)[1]) == {
        "PartitionKey": "00",
        "RowKey": KEY,
        "Text": "done",
        "Flag": False,
        "Small": -(2**31),
        "Large@odata.type": "Edm.Int64",
        "Large": "2147483648",
        "Ratio@odata.type": "Edm.Double",
        "Ratio": 0.25,
        "Missing@odata.type": "Edm.Double",
        "Missing": "NaN",
        "Up@odata.type": "Edm.Double",
        "Up": "Infinity",
        "Down@odata.type": "Edm.Double",
        "Down": "-Infinity",
        "Local@odata.type": "Edm.DateTime",
        "Local": "2024-05-01T10:00:00.000005Z",
        "Whole@odata.type": "Edm.DateTime",
        "Whole": "2024-05-01T10:00:00.000000Z",
    }


@pytest.mark.parametrize(
    ("operations", "error", "words"),
    [
        ([("insert", row(), {})], ValueError, "unsupported operation 'insert'"),
        ([("create", row(LeaseUntil=datetime(2024, 5, 1)), {})], ValueError, "naive datetime"),
        ([("create", row(), {"mode": UpdateMode.MERGE})], ValueError, "create does not take"),
        ([("upsert", row(), {"mode": "overwrite"})], ValueError, "unsupported update mode"),
        (
            [("update", row(), {"match_condition": MatchConditions.IfNotModified})],
            ValueError,
            "unsupported condition",
        ),
        ([("delete", row(), {"etag": ETAG})], ValueError, "unsupported condition"),
        ([("update", row(), {**IF_MATCH, "etag": "a\r\nX-Evil: 1"})], ValueError, "line break"),
        ([("create", row(), {}), ("create", row("b", "01"), {})], ValueError, "one partition"),
        ([("create", row(), {}), delete_op("00", KEY, ETAG)], ValueError, "row .* twice"),
        ([("create", {"PartitionKey": "00"}, {})], ValueError, "without PartitionKey and RowKey"),
        ([], ValueError, "1 to 100 operations, not 0"),
        ([("upsert", row(f"k{n}"), {}) for n in range(101)], ValueError, "not 101"),
        ([("create", row(Big=2**63), {})], ValueError, "does not fit Edm.Int64"),
        ([("create", row(Blob=b"x"), {})], TypeError, "bytes is not a supported"),
        ([("create", {"PartitionKey": "00", "RowKey": 7}, {})], TypeError, "must be strings"),
    ],
)
def test_operations_the_table_cannot_take_are_refused_before_sending(
    operations: list[Operation], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        build_body(BASE, TABLE, operations, BATCH, CHANGESET)


# The reply.


def answer(status: str, *headers: str, body: str = "") -> str:
    """One changeset answer: an application/http part holding an HTTP response."""
    head = "\r\n".join(["Content-Type: application/http", "Content-Transfer-Encoding: binary"])
    return "\r\n".join([head, "", f"HTTP/1.1 {status}", *headers, "", body])


def multipart(
    *answers: str, batch: str = "batchresponse_1", changeset: str = "changesetresponse_2"
) -> str:
    """A $batch reply around `answers`, laid out as Azure Storage lays it out."""
    parts = "".join(f"--{changeset}\r\n{a}\r\n" for a in answers)
    return (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        f"{parts}--{changeset}--\r\n--{batch}--\r\n"
    )


def reply_headers(batch: str = "batchresponse_1") -> dict[str, str]:
    return {"Content-Type": f"multipart/mixed; boundary={batch}", "x-ms-request-id": "r-1"}


def error_body(code: str, value: str) -> str:
    return json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": value}}})


def created(etag: str) -> str:
    return answer(
        "204 No Content",
        "X-Content-Type-Options: nosniff",
        "Cache-Control: no-cache",
        "Preference-Applied: return-no-content",
        "DataServiceVersion: 3.0;",
        f"Location: {ENTITY_URL}",
        f"DataServiceId: {ENTITY_URL}",
        f"ETag: {etag}",
    )


def failed(status: str, code: str, value: str) -> str:
    return answer(
        status,
        "X-Content-Type-Options: nosniff",
        "DataServiceVersion: 3.0;",
        "Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8",
        body=error_body(code, value),
    )


def test_a_success_gives_each_operation_its_etag_and_a_delete_none() -> None:
    deleted = answer("204 No Content", "Cache-Control: no-cache", "DataServiceVersion: 1.0;")
    reply = multipart(created(ETAG), deleted, created(ETAG_2))

    etags = read_reply(202, reply_headers(), reply.encode(), ["create", "delete", "update"])

    assert etags == [ETAG, "", ETAG_2]


def test_header_names_are_read_in_any_case_and_order() -> None:
    updated = answer("204 No Content", f"etag: {ETAG}", "dataserviceversion: 3.0;")
    reply = multipart(updated, batch="b", changeset="c").replace("Content-Type", "content-type")
    headers = {"content-type": 'Multipart/Mixed; Boundary="b"'}

    assert read_reply(202, headers, reply.encode(), ["update"]) == [ETAG]


@pytest.mark.parametrize(
    ("reply_answer", "status", "code", "index", "message"),
    [
        (
            failed(
                "409 Conflict",
                "EntityAlreadyExists",
                "2:The specified entity already exists.\nRequestId:r-1\nTime:t",
            ),
            409,
            "EntityAlreadyExists",
            2,
            "transaction failed: 409 EntityAlreadyExists at operation 2:"
            " The specified entity already exists. RequestId:r-1 Time:t",
        ),
        (
            failed(
                "412 Precondition Failed",
                "UpdateConditionNotSatisfied",
                "0:The update condition specified in the request was not satisfied.",
            ),
            412,
            "UpdateConditionNotSatisfied",
            0,
            "transaction failed: 412 UpdateConditionNotSatisfied at operation 0:"
            " The update condition specified in the request was not satisfied.",
        ),
        (
            failed(
                "404 Not Found",
                "TableNotFound",
                "0:The table specified does not exist.\nRequestId:r-1",
            ),
            404,
            "TableNotFound",
            0,
            "transaction failed: 404 TableNotFound at operation 0:"
            " The table specified does not exist. RequestId:r-1",
        ),
        (
            failed("400 Bad Request", "InvalidInput", "The batch request body is malformed."),
            400,
            "InvalidInput",
            None,
            "transaction failed: 400 InvalidInput: The batch request body is malformed.",
        ),
    ],
    ids=["exists", "modified", "no-table", "no-index"],
)
def test_a_failed_answer_names_its_status_code_and_index(
    reply_answer: str, status: int, code: str, index: int | None, message: str
) -> None:
    reply = multipart(reply_answer)

    with pytest.raises(TransactionFailed) as caught:
        read_reply(202, reply_headers(), reply.encode(), ["create", "create", "create"])

    assert str(caught.value) == message
    assert (caught.value.status_code, caught.value.error_code, caught.value.index) == (
        status,
        code,
        index,
    )
    assert isinstance(caught.value, HttpResponseError)
    assert error_code(caught.value) == code


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "words"),
    [
        (
            403,
            {"Content-Type": "application/json", "x-ms-error-code": "AuthenticationFailed"},
            error_body("AuthenticationFailed", "Server failed to authenticate the request."),
            "AuthenticationFailed",
            "403 AuthenticationFailed: Server failed to authenticate the request.",
        ),
        (413, {"x-ms-error-code": "RequestBodyTooLarge"}, "", "RequestBodyTooLarge", "413"),
        (
            503,
            {"Content-Type": "application/xml"},
            "<?xml version='1.0'?><Error><Code>ServerBusy</Code></Error>",
            "",
            '503 \\(no code\\): no error document in the reply: "<\\?xml',
        ),
        (500, {}, "", "", "500 \\(no code\\)$"),
    ],
    ids=["json", "header-only", "xml", "empty"],
)
def test_a_refused_batch_is_a_failure_with_whatever_the_reply_says(
    status: int, headers: dict[str, str], body: str, code: str, words: str
) -> None:
    with pytest.raises(TransactionFailed, match=words) as caught:
        read_reply(status, headers, body.encode(), ["create"])

    assert (caught.value.status_code, caught.value.error_code, caught.value.index) == (
        status,
        code,
        None,
    )


GOOD = multipart(created(ETAG))


@pytest.mark.parametrize(
    ("headers", "body", "words"),
    [
        (reply_headers(), "", "no closing --batchresponse_1--"),
        ({"Content-Type": "application/json"}, GOOD, "is not multipart/mixed"),
        ({"Content-Type": "multipart/mixed"}, GOOD, "is not multipart/mixed"),
        ({}, GOOD, "Content-Type '' is not multipart/mixed"),
        (reply_headers(), GOOD[: len(GOOD) // 2], "no closing"),
        (reply_headers(), GOOD.replace("\r\n", "\n"), "not delimited by CRLF"),
        (
            reply_headers(),
            GOOD.replace("application/http", "text/plain"),
            "Content-Type 'text/plain'",
        ),
        (reply_headers(), GOOD.replace("HTTP/1.1 204", "HTTP/1.1 2x4"), "status line"),
        (reply_headers(), GOOD.replace("HTTP/1.1 204", "204"), "status line"),
        (reply_headers(), GOOD.replace("X-Content-Type-Options: ", ""), "header line"),
        (
            reply_headers(),
            GOOD.replace(f"ETag: {ETAG}", "Server: x"),
            "no ETag in the answers to operations \\[0\\]",
        ),
        (reply_headers(), multipart(created(ETAG), created(ETAG)), "2 answers to 1 operations"),
        (reply_headers(), multipart(), "no parts between --changesetresponse_2"),
        (reply_headers(), "\udcff\udcfe garbage --batchresponse_1--", "no parts between"),
    ],
    ids=[
        "empty",
        "json",
        "no-boundary",
        "no-content-type",
        "truncated",
        "bare-lf",
        "not-http",
        "bad-status",
        "no-version",
        "bad-header",
        "no-etag",
        "too-many",
        "no-answers",
        "binary",
    ],
)
def test_an_unreadable_reply_is_a_failure_that_says_so(
    headers: dict[str, str], body: str, words: str
) -> None:
    with pytest.raises(TransactionFailed, match=words) as caught:
        read_reply(202, headers, body.encode("utf-8", errors="surrogateescape"), ["create"])

    assert str(caught.value).startswith("unreadable transaction reply (202): ")
    assert (caught.value.status_code, caught.value.error_code, caught.value.index) == (
        202,
        "",
        None,
    )


@pytest.mark.parametrize(
    "error_document",
    ['{"odata.error": []}', '{"odata.error": {"code": 7, "message": "flat"}}', "[1, 2]", "{"],
)
def test_a_failed_answer_with_an_odd_error_document_is_still_a_failure(error_document: str) -> None:
    reply = multipart(answer("409 Conflict", "Content-Type: application/json", body=error_document))

    with pytest.raises(TransactionFailed, match="409") as caught:
        read_reply(202, reply_headers(), reply.encode(), ["create"])

    assert (caught.value.status_code, caught.value.index) == (409, None)


# The client internals submit_transaction relies on.


def closed_endpoint(port: int) -> str:
    """A connection string for the development account on a port nothing listens on."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
    )


def test_the_table_client_still_has_what_submit_transaction_uses() -> None:
    port = free_port()
    client = TableClient.from_connection_string(closed_endpoint(port), TABLE)

    assert client.scheme == "http"
    assert client._primary_hostname == f"127.0.0.1:{port}/{ACCOUNT_NAME}"
    assert client.table_name == TABLE
    assert client.api_version == "2019-02-02"
    assert callable(client._client.send_request)


# Against Azurite.


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


def stored(client: TableClient) -> dict[str, dict[str, Any]]:
    """Every row of the table by row key, as the SDK reads it."""
    return {entity["RowKey"]: dict(entity) for entity in client.list_entities()}


@pytest.mark.azurite
def test_inserted_rows_read_back_with_every_property_type(client: TableClient) -> None:
    later = datetime(2024, 5, 1, 14, 30, 0, 999999, tzinfo=timezone(timedelta(hours=-5)))
    keys = [KEY, "it's 50%", "workflow_run:9:completed", "x''y ünï (1)+2&3"]
    rows = [
        row(k, Count=n, Big=2**40 + n, Ratio=n / 4, Flag=n % 2 == 0, LeaseUntil=later)
        for n, k in enumerate(keys)
    ]

    etags = submit_transaction(client, [("create", r, {}) for r in rows])

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
def test_a_replace_needs_the_current_etag(client: TableClient) -> None:
    (first,) = submit_transaction(client, [("create", row(State="claimed"), {})])

    (second,) = submit_transaction(client, [replace_op(row(State="done"), first)])
    assert second != first
    assert client.get_entity("00", KEY)["State"] == "done"

    with pytest.raises(TransactionFailed) as caught:
        submit_transaction(
            client, [("upsert", row("other"), {}), replace_op(row(State="claimed"), first)]
        )

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        412,
        "UpdateConditionNotSatisfied",
        1,
    )
    assert sorted(stored(client)) == [KEY]
    assert client.get_entity("00", KEY).metadata["etag"] == second


@pytest.mark.azurite
def test_an_insert_of_an_existing_row_fails_at_its_index_and_writes_nothing(
    client: TableClient,
) -> None:
    submit_transaction(client, [("create", row(KEY), {})])

    with pytest.raises(TransactionFailed) as caught:
        submit_transaction(
            client, [("create", row("a"), {}), ("create", row(KEY), {}), ("create", row("b"), {})]
        )

    assert (caught.value.status_code, error_code(caught.value), caught.value.index) == (
        409,
        "EntityAlreadyExists",
        1,
    )
    assert sorted(stored(client)) == [KEY]


@pytest.mark.azurite
def test_an_upsert_inserts_an_absent_row_and_merges_or_replaces_an_existing_one(
    client: TableClient,
) -> None:
    (inserted,) = submit_transaction(client, [("upsert", row(Extra="kept"), {})])
    assert stored(client)[KEY]["Extra"] == "kept"

    (merged,) = submit_transaction(client, [("upsert", row(State="done"), {"mode": "merge"})])
    assert (stored(client)[KEY]["State"], stored(client)[KEY]["Extra"]) == ("done", "kept")

    replaced = {"PartitionKey": "00", "RowKey": KEY, "State": "claimed"}
    (last,) = submit_transaction(client, [("upsert", replaced, {"mode": UpdateMode.REPLACE})])
    assert stored(client)[KEY] == replaced
    assert len({inserted, merged, last}) == 3


@pytest.mark.azurite
def test_a_merge_with_an_etag_keeps_the_other_properties(client: TableClient) -> None:
    (etag,) = submit_transaction(client, [("create", row(Extra="kept"), {})])
    merge = {
        "mode": UpdateMode.MERGE,
        "etag": etag,
        "match_condition": MatchConditions.IfNotModified,
    }

    (new_etag,) = submit_transaction(client, [("update", row(State="done"), merge)])

    entity = client.get_entity("00", KEY)
    assert (entity["State"], entity["Extra"], entity.metadata["etag"]) == ("done", "kept", new_etag)


@pytest.mark.azurite
def test_a_delete_needs_the_current_etag(client: TableClient) -> None:
    etags = submit_transaction(client, [("create", row("a"), {}), ("create", row("b"), {})])

    with pytest.raises(TransactionFailed) as caught:
        submit_transaction(client, [delete_op("00", "a", etags[1])])
    assert (caught.value.status_code, error_code(caught.value)) == (
        412,
        "UpdateConditionNotSatisfied",
    )

    upserted, deleted = submit_transaction(
        client, [("upsert", row("c"), {}), delete_op("00", "a", etags[0])]
    )
    assert (upserted != "", deleted) == (True, "")
    assert sorted(stored(client)) == ["b", "c"]

    with pytest.raises(TransactionFailed) as gone:
        submit_transaction(client, [delete_op("00", "a", etags[0])])
    assert (gone.value.status_code, error_code(gone.value), gone.value.index) == (
        404,
        "ResourceNotFound",
        0,
    )


@pytest.mark.azurite
def test_a_full_transaction_of_one_hundred_rows(client: TableClient) -> None:
    rows = [row(f"workflow_job:{n}:completed") for n in range(100)]

    etags = submit_transaction(client, [("create", r, {}) for r in rows])

    # Rows written in the same instant may share an ETag: it is the row's timestamp.
    etag_of_row = {entity["RowKey"]: entity.metadata["etag"] for entity in client.list_entities()}
    assert etag_of_row == {r["RowKey"]: etag for r, etag in zip(rows, etags, strict=True)}


@pytest.mark.azurite
def test_a_missing_table_is_table_not_found(azurite: Azurite, responses: list[Any]) -> None:
    with (
        azurite_client(azurite, responses, unique_table_name()) as client,
        pytest.raises(TransactionFailed) as caught,
    ):
        submit_transaction(client, [("create", row(), {})])

    assert (caught.value.status_code, error_code(caught.value)) == (404, "TableNotFound")
    assert caught.value.index == 0


@pytest.mark.azurite
def test_the_response_hook_sees_one_response_per_transaction(
    client: TableClient, responses: list[Any]
) -> None:
    submit_transaction(client, [("create", row("a"), {}), ("create", row("b"), {})])
    assert len(responses) == 1

    with pytest.raises(TransactionFailed):
        submit_transaction(client, [("create", row("a"), {})])
    assert len(responses) == 2
    assert responses[-1].http_response.status_code == 202


def test_an_unreachable_endpoint_raises_the_pipeline_error() -> None:
    storage = StorageSettings(closed_endpoint(free_port()), None, "unused")
    timeouts = ClientTimeouts(connection_timeout_s=0.5, read_timeout_s=0.5, retries=0)

    with (
        table_client(storage, TABLE, timeouts, lambda _: None) as client,
        pytest.raises(ServiceRequestError) as caught,
    ):
        submit_transaction(client, [("create", row(), {})])

    assert not isinstance(caught.value, TransactionFailed)
