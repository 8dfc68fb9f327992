"""The $batch request body: one changeset of HTTP requests, written as plain text."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.core import MatchConditions
from azure.data.tables import UpdateMode

from backend.idempotency.batch import Operation, build_body, check_operations
from backend.idempotency.layout import delete_op, replace_op
from tests.idempotency.rows import ETAG, IF_MATCH, KEY, row

BASE = "https://acct.table.core.windows.net"
TABLE = "ledger"
BATCH = "batch_11111111-1111-1111-1111-111111111111"
CHANGESET = "changeset_22222222-2222-2222-2222-222222222222"
URL_KEY = "workflow_job%3A123%3Acompleted"


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
@pytest.mark.parametrize("check", [lambda operations: body_of(*operations), check_operations])
def test_operations_the_table_cannot_take_are_refused_before_sending(
    operations: list[Operation],
    error: type[Exception],
    words: str,
    check: Callable[[list[Operation]], object],
) -> None:
    with pytest.raises(error, match=words):
        check(operations)
