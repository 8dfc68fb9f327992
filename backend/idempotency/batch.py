"""The $batch codec of entity group transactions: the request body and the reply, as plain text.

The protocol is simple enough to write with string formatting and to read by splitting on the
boundaries; `transport.BatchTransport` sends it, and why it exists is written there.
https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

# (kind, entity, options), the shape TableClient.submit_transaction takes.
Operation = tuple[str, dict[str, Any], dict[str, Any]]

MAX_OPERATIONS = 100
CRLF = "\r\n"
INT32_RANGE = range(-(2**31), 2**31)
INT64_RANGE = range(-(2**63), 2**63)
# "1:The specified entity already exists." names the failing operation's position.
_INDEX_PREFIX = re.compile(r"(\d+):")
_BOUNDARY = re.compile(r'boundary\s*=\s*"?([^";]+)"?', re.IGNORECASE)
_ALLOWED_OPTIONS = {
    "create": frozenset(),
    "update": frozenset({"mode", "etag", "match_condition"}),
    "upsert": frozenset({"mode"}),
    "delete": frozenset({"etag", "match_condition"}),
}
_READ_HEADERS = ["Accept: application/json;odata=minimalmetadata", "DataServiceVersion: 3.0"]
_WRITE_HEADERS = ["Content-Type: application/json", *_READ_HEADERS]


class TransactionFailed(HttpResponseError):
    """The service refused a transaction (nothing in it was written), or its reply was unreadable.

    `status_code` and `error_code` are the failing operation's ("EntityAlreadyExists",
    "UpdateConditionNotSatisfied", "ResourceNotFound", "TableNotFound"; "" when the reply named
    none or could not be read, and then whether the writes happened is unknown); `index` is the
    failing operation's position when the service gave it.
    """

    def __init__(
        self, message: str, *, status_code: int, error_code: str, index: int | None
    ) -> None:
        super().__init__(message=message)
        self.status_code = status_code
        self.error_code = error_code
        self.index = index


# Building the request body.


def _key(value: str) -> str:
    # A key is an OData string literal, which doubles its single quotes; the literal is then
    # percent-encoded into the path, as the SDK does.
    # https://docs.oasis-open.org/odata/odata/v4.01/odata-v4.01-part2-url-conventions.html
    return quote(value.replace("'", "''"), safe="")


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone")
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _properties(entity: Mapping[str, Any]) -> dict[str, Any]:
    """An entity's JSON properties, typed the way the SDK reads them back."""
    # https://learn.microsoft.com/en-us/rest/api/storageservices/payload-format-for-table-service-operations
    out: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, str | bool):
            out[name] = value
        elif isinstance(value, int):
            if value in INT32_RANGE:
                out[name] = value
            elif value in INT64_RANGE:
                out[f"{name}@odata.type"] = "Edm.Int64"
                out[name] = str(value)
            else:
                raise ValueError(f"{name}={value} does not fit Edm.Int64")
        elif isinstance(value, float):
            out[f"{name}@odata.type"] = "Edm.Double"
            if math.isfinite(value):
                out[name] = value
            else:
                out[name] = (
                    "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
                )
        elif isinstance(value, datetime):
            out[f"{name}@odata.type"] = "Edm.DateTime"
            out[name] = _utc_text(value)
        else:
            raise TypeError(f"{name}: {type(value).__name__} is not a supported property type")
    return out


def _entity_url(table_url: str, entity: Mapping[str, Any]) -> str:
    keys = f"PartitionKey='{_key(entity['PartitionKey'])}',RowKey='{_key(entity['RowKey'])}'"
    return f"{table_url}({keys})"


def _if_match(options: Mapping[str, Any]) -> str:
    """The If-Match of a conditional write: its ETag, or "*" for any existing row."""
    etag = options.get("etag")
    condition = options.get("match_condition") or MatchConditions.Unconditionally
    if condition == MatchConditions.IfNotModified and etag:
        if "\r" in str(etag) or "\n" in str(etag):
            raise ValueError(f"ETag {etag!r} holds a line break")
        return str(etag)
    if condition == MatchConditions.Unconditionally and not etag:
        return "*"
    raise ValueError(f"unsupported condition {condition!r} with etag {etag!r}")


def _mode(options: Mapping[str, Any]) -> UpdateMode:
    mode = options.get("mode", UpdateMode.MERGE)
    if mode not in (UpdateMode.MERGE, UpdateMode.REPLACE):
        raise ValueError(f"unsupported update mode {mode!r}")
    return UpdateMode(mode)


def _request(table_url: str, operation: Operation) -> str:
    """One operation as the HTTP request a changeset part carries."""
    kind, entity, options = operation
    if kind not in _ALLOWED_OPTIONS:
        raise ValueError(f"unsupported operation {kind!r}")
    extra = set(options) - _ALLOWED_OPTIONS[kind]
    if extra:
        raise ValueError(f"{kind} does not take {sorted(extra)}")
    if kind == "create":
        # https://learn.microsoft.com/en-us/rest/api/storageservices/insert-entity
        method, url, headers = "POST", table_url, [*_WRITE_HEADERS, "Prefer: return-no-content"]
    else:
        url = _entity_url(table_url, entity)
        if kind == "delete":
            # https://learn.microsoft.com/en-us/rest/api/storageservices/delete-entity1
            head = [f"DELETE {url} HTTP/1.1", *_READ_HEADERS, f"If-Match: {_if_match(options)}"]
            return CRLF.join([*head, "", ""])
        # PUT replaces and MERGE merges; without If-Match either inserts an absent row.
        # https://learn.microsoft.com/en-us/rest/api/storageservices/update-entity2
        # https://learn.microsoft.com/en-us/rest/api/storageservices/merge-entity
        method = "PUT" if _mode(options) == UpdateMode.REPLACE else "MERGE"
        headers = _WRITE_HEADERS
        if kind == "update":
            headers = [*headers, f"If-Match: {_if_match(options)}"]
    payload = json.dumps(_properties(entity), separators=(",", ":"))
    return CRLF.join([f"{method} {url} HTTP/1.1", *headers, "", payload])


def _check_keys(operations: Sequence[Operation]) -> None:
    if not 1 <= len(operations) <= MAX_OPERATIONS:
        raise ValueError(
            f"a transaction holds 1 to {MAX_OPERATIONS} operations, not {len(operations)}"
        )
    partitions = set()
    rows: set[str] = set()
    for _, entity, _ in operations:
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise ValueError(f"an entity without PartitionKey and RowKey: {sorted(entity)}")
        if not isinstance(entity["PartitionKey"], str) or not isinstance(entity["RowKey"], str):
            raise TypeError("PartitionKey and RowKey must be strings")
        partitions.add(entity["PartitionKey"])
        if entity["RowKey"] in rows:  # the service refuses it: 400 InvalidDuplicateRow
            raise ValueError(f"a transaction writes row {entity['RowKey']!r} twice")
        rows.add(entity["RowKey"])
    if len(partitions) > 1:
        raise ValueError(f"a transaction spans one partition, not {sorted(map(str, partitions))}")


def build_body(
    base_url: str,
    table_name: str,
    operations: Sequence[Operation],
    batch_boundary: str,
    changeset_boundary: str,
) -> str:
    """The multipart/mixed $batch body: one changeset holding every operation in order.

    Raises:
        ValueError: an unsupported operation, option or value, a naive datetime, or keys that
            do not fit one transaction.
        TypeError: a property or key of a type the table cannot store.
    """
    _check_keys(operations)
    table_url = f"{base_url}/{quote(table_name, safe='')}"
    lines = [
        f"--{batch_boundary}",
        f"Content-Type: multipart/mixed; boundary={changeset_boundary}",
        "",
    ]
    for operation in operations:
        lines += [
            f"--{changeset_boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            "",
            _request(table_url, operation),
        ]
    lines += [f"--{changeset_boundary}--", f"--{batch_boundary}--", ""]
    return CRLF.join(lines)


def check_operations(operations: Sequence[Operation]) -> None:
    """Raise what `build_body` raises for operations the table cannot take, building nothing."""
    _check_keys(operations)
    for operation in operations:
        _request("", operation)


# Reading the reply.


class _Unreadable(Exception):
    """The reply does not have the shape the protocol describes."""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _split_head(text: str) -> tuple[str, dict[str, str], str]:
    """The first line, the headers (names lower-cased) and the body of an HTTP-like message."""
    head, separator, body = text.partition(CRLF + CRLF)
    if not separator:
        raise _Unreadable("a part without a blank line after its headers")
    first, *lines = head.split(CRLF)
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Unreadable(f"header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return first, headers, body


def _boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/mixed") or match is None:
        raise _Unreadable(f"Content-Type {content_type[:120]!r} is not multipart/mixed")
    return match.group(1)


def _http_answers(text: str, boundary: str) -> Iterator[str]:
    """The application/http parts of a multipart body, nested changesets included, in order."""
    segments = text.split(f"--{boundary}")
    if len(segments) < 2 or not segments[-1].startswith("--"):
        raise _Unreadable(f"no closing --{boundary}--")
    if len(segments) < 3:
        raise _Unreadable(f"no parts between --{boundary} and --{boundary}--")
    for segment in segments[1:-1]:
        # The rest of the boundary line, then the part; the CRLF before the next boundary is
        # the delimiter's. https://www.rfc-editor.org/rfc/rfc2046#section-5.1.1
        _, newline, part = segment.partition(CRLF)
        if not newline or not part.endswith(CRLF):
            raise _Unreadable("a part not delimited by CRLF")
        _, headers, body = _split_head(CRLF + part[: -len(CRLF)])
        content_type = headers.get("content-type", "")
        if content_type.lower().startswith("multipart/mixed"):
            yield from _http_answers(body, _boundary_of(content_type))
        elif content_type.lower().startswith("application/http"):
            yield body
        else:
            raise _Unreadable(f"a part of Content-Type {content_type[:80]!r}")


def _status_of(line: str) -> int:
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit():
        raise _Unreadable(f"status line {line[:80]!r}")
    return int(code)


def transaction_failure(status: int, code: str, text: str) -> TransactionFailed:
    """The error for a failed transaction whose reply gave `code` and the message `text`.

    A message starting "<n>:" names the failing operation's position.
    """
    index = None
    match = _INDEX_PREFIX.match(text)
    if match:
        index = int(match.group(1))
        text = text[match.end() :]
    where = "" if index is None else f" at operation {index}"
    summary = " ".join(text.split())
    message = f"transaction failed: {status} {code or '(no code)'}{where}"
    if summary:
        message += f": {summary}"
    return TransactionFailed(message, status_code=status, error_code=code, index=index)


def _failure(status: int, body: str, fallback_code: str = "") -> TransactionFailed:
    """The error a failed answer describes in its JSON body, or as well as it can without one."""
    # {"odata.error": {"code": "...", "message": {"lang": "en-US", "value": "1:..."}}}
    # https://learn.microsoft.com/en-us/rest/api/storageservices/status-and-error-codes2
    code, text = fallback_code, ""
    try:
        error = json.loads(body)["odata.error"]
        code = str(error.get("code") or fallback_code)
        text = str(error.get("message", {}).get("value", ""))
    except (ValueError, TypeError, KeyError, AttributeError):
        text = f"no error document in the reply: {body[:200]!r}" if body.strip() else ""
    return transaction_failure(status, code, text)


def missing_etags(kinds: Sequence[str], etags: Sequence[str]) -> list[int]:
    """The positions of the writes (all but deletes) whose answer carried no ETag."""
    return [i for i, (k, e) in enumerate(zip(kinds, etags, strict=True)) if not e and k != "delete"]


def read_reply(
    status: int, headers: Mapping[str, str], body: bytes, kinds: Sequence[str]
) -> list[str]:
    """Each operation's new ETag ("" for a delete), from the reply to a $batch request.

    Raises:
        TransactionFailed: the batch or one of its operations failed, or the reply is not the
            multipart answer of one changeset of `len(kinds)` operations.
    """
    text = body.decode("utf-8", errors="replace")
    if status != 202:
        raise _failure(status, text, _header(headers, "x-ms-error-code"))
    try:
        etags = []
        for answer in _http_answers(text, _boundary_of(_header(headers, "content-type"))):
            first, answer_headers, answer_body = _split_head(answer)
            answer_status = _status_of(first)
            if not 200 <= answer_status < 300:
                raise _failure(answer_status, answer_body)
            etags.append(answer_headers.get("etag", ""))
        if len(etags) != len(kinds):
            raise _Unreadable(f"{len(etags)} answers to {len(kinds)} operations")
        missing = missing_etags(kinds, etags)
        if missing:
            raise _Unreadable(f"no ETag in the answers to operations {missing}")
    except _Unreadable as error:
        message = f"unreadable transaction reply ({status}): {error}; it starts {text[:120]!r}"
        raise TransactionFailed(message, status_code=status, error_code="", index=None) from None
    return ["" if kind == "delete" else etag for kind, etag in zip(kinds, etags, strict=True)]
