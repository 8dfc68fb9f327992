"""The reply to a $batch request, read as plain text: each operation's ETag, or its failure."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError

from backend.idempotency.batch import TransactionFailed, read_reply
from common.azure_queue import error_code
from tests.idempotency.rows import ETAG, ETAG_2

ENTITY_URL = "https://acct.table.core.windows.net/ledger(PartitionKey='00',RowKey='workflow_job%3A123%3Acompleted')"


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
