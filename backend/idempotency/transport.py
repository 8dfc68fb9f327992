"""How a ledger transaction reaches Azure Tables: the SDK's own call, or a hand-written $batch.

Both take the operations `TableClient.submit_transaction` takes, give back each operation's new
ETag ("" for a delete) and raise the same errors, so the ledger cannot tell them apart.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import EdmType, EntityProperty, TableClient

from backend.idempotency.batch import (
    INT32_RANGE,
    Operation,
    TransactionFailed,
    build_body,
    check_operations,
    missing_etags,
    read_reply,
    transaction_failure,
)
from common.azure_queue import error_code

log = logging.getLogger(__name__)

# What BatchTransport reads from a TableClient: the attributes the SDK's own `_batch_send` uses
# (and `_client` must have `send_request`). azure-data-tables is pinned in
# requirements/backend.txt; a release that moves one of them makes the ledger fall back to the
# SDK's `submit_transaction` rather than fail.
FAST_PATH_ATTRIBUTES = ("scheme", "_primary_hostname", "table_name", "api_version", "_client")


class TransactionTransport(Protocol):
    """Runs one entity group transaction: 1 to 100 operations on one partition, all or none."""

    name: str

    def submit(self, operations: Sequence[Operation]) -> list[str]:
        """Each operation's new ETag in order, "" for a delete.

        Raises:
            ValueError, TypeError: operations the table cannot take (see `batch.build_body`),
                before anything is sent.
            TransactionFailed: the service refused the transaction (nothing was written), or
                its reply could not be read.
            azure.core.exceptions.AzureError: the pipeline's own errors (connection, timeout),
                unchanged.
        """


class BatchTransport:
    """Transactions as a $batch body written by `batch.py`, sent through the client's pipeline.

    Why it exists: the SDK's `submit_transaction` builds the multipart body and parses the reply
    with the `email` package. CPU of the calling process per transaction of creates
    (`time.process_time()`, median of 25, against Azurite, azure-data-tables 12.7.0): 32
    operations, 17 ms through the SDK and 3 ms here; 100 operations, 37 ms against 4 ms (an
    earlier measure of the ledger's own transactions gave 33 ms against 5 ms). The ledger sends
    a transaction per partition per claim and per completion, so that CPU is the worker's. The
    request still goes through the client's own pipeline: authentication, retries, timeouts and
    the response hook all apply.
    """

    name = "the hand-written $batch"

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def submit(self, operations: Sequence[Operation]) -> list[str]:
        """See `TransactionTransport.submit`."""
        client = self._client
        # The SDK offers no public way to send a prepared request through a TableClient's
        # pipeline; these are the attributes its own `_batch_send` uses (FAST_PATH_ATTRIBUTES).
        base_url = f"{client.scheme}://{client._primary_hostname}"
        batch_boundary = f"batch_{uuid.uuid4()}"
        body = build_body(
            base_url, client.table_name, operations, batch_boundary, f"changeset_{uuid.uuid4()}"
        )
        request = HttpRequest(
            "POST",
            f"{base_url}/$batch",
            headers={
                "x-ms-version": client.api_version,
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "Content-Type": f"multipart/mixed; boundary={batch_boundary}",
                "Accept": "application/json",
            },
            content=body.encode("utf-8"),
        )
        # Streamed, so that the pipeline does not try to decode the multipart reply on its own.
        response = client._client.send_request(request, stream=True)
        reply = response.read()
        kinds = [kind for kind, _, _ in operations]
        return read_reply(response.status_code, response.headers, reply, kinds)


def _sdk_entity(entity: Mapping[str, Any]) -> dict[str, Any]:
    """`entity` with integers past Int32 typed Edm.Int64, as `batch.py` writes them.

    The SDK refuses a plain int that does not fit Edm.Int32.
    """
    return {
        name: EntityProperty(value, EdmType.INT64)
        if isinstance(value, int) and not isinstance(value, bool) and value not in INT32_RANGE
        else value
        for name, value in entity.items()
    }


class SdkTransport:
    """Transactions through the SDK's own `TableClient.submit_transaction`: the fallback."""

    name = "the SDK's submit_transaction"

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def submit(self, operations: Sequence[Operation]) -> list[str]:
        """See `TransactionTransport.submit`."""
        # The hand-written path's checks, so that both refuse the same operations the same way.
        check_operations(operations)
        sdk_operations = [
            (kind, _sdk_entity(entity), options) for kind, entity, options in operations
        ]
        try:
            replies = self._client.submit_transaction(sdk_operations)
        except HttpResponseError as error:
            status = error.status_code or 0
            raise transaction_failure(
                status, error_code(error), str(error.message or "")
            ) from error
        kinds = [kind for kind, _, _ in operations]
        etags = [str(reply.get("etag") or "") for reply in replies]
        if len(etags) != len(kinds) or missing_etags(kinds, etags):
            message = (
                f"unreadable transaction reply: {len(etags)} answers to {len(kinds)} operations"
            )
            raise TransactionFailed(message, status_code=202, error_code="", index=None)
        return ["" if kind == "delete" else etag for kind, etag in zip(kinds, etags, strict=True)]


def missing_attributes(client: TableClient) -> list[str]:
    """The attributes BatchTransport needs that `client` lacks (none on the pinned SDK)."""
    missing = [name for name in FAST_PATH_ATTRIBUTES if not hasattr(client, name)]
    if "_client" not in missing and not callable(getattr(client._client, "send_request", None)):
        missing.append("_client.send_request")
    return missing


def choose_transport(client: TableClient, *, prefer_fast: bool = True) -> TransactionTransport:
    """The hand-written path when `client` has what it needs, else the SDK's; logs which."""
    table = getattr(client, "table_name", "?")
    if not prefer_fast:
        log.info("ledger table %s: transactions through %s", table, SdkTransport.name)
        return SdkTransport(client)
    missing = missing_attributes(client)
    if missing:
        log.warning(
            "ledger table %s: transactions through %s, slower: TableClient has no %s",
            table,
            SdkTransport.name,
            ", ".join(missing),
        )
        return SdkTransport(client)
    log.info("ledger table %s: transactions through %s", table, BatchTransport.name)
    return BatchTransport(client)
