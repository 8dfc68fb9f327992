"""The ledger's table: one client, one transaction transport, and SDK errors made the ledger's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableEntity

from backend.idempotency.batch import Operation
from backend.idempotency.ledger import LedgerUnavailable
from backend.idempotency.transport import choose_transport
from common.azure_clients import ClientTimeouts, describe_error, table_client
from common.azure_queue import error_code
from common.settings import StorageSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# How long one ledger call may take: socket timeouts and SDK retries.
LEDGER_TIMEOUTS = ClientTimeouts(
    connection_timeout_s=5.0, read_timeout_s=10.0, retries=2, retry_backoff_s=0.5
)


class Conflict(Exception):
    """A conditional write lost a race: 409 exists, 412 modified, 404 gone.

    `index` is the position of the operation that failed, when the service said.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class TableStore:
    """Point reads and transactions on one Azure table; SDK errors become LedgerUnavailable.

    A missing table is created and the call tried again. Transactions go through the transport
    `choose_transport` picks once, here. `round_trips` counts the HTTP responses received.
    """

    def __init__(
        self,
        storage: StorageSettings,
        table_name: str,
        timeouts: ClientTimeouts = LEDGER_TIMEOUTS,
        *,
        fast_transactions: bool = True,
    ) -> None:
        self.table_name = table_name
        self.round_trips = 0
        self._lock = threading.Lock()
        self._client = table_client(storage, self.table_name, timeouts, self._count)
        self._transport = choose_transport(self._client, prefer_fast=fast_transactions)

    def _count(self, _response: Any) -> None:
        with self._lock:
            self.round_trips += 1

    def _call(self, operation: Callable[[], T], *, conditional: bool = False) -> T:
        """Run one SDK call; a missing table is created and the call retried once.

        Raises:
            Conflict: a `conditional` write found a row existing, changed or gone.
            LedgerUnavailable: anything else the SDK raised.
        """
        try:
            try:
                return operation()
            except HttpResponseError as error:
                if error_code(error) != "TableNotFound":
                    raise
                self._create_table()
                return operation()
        except HttpResponseError as error:
            code = error_code(error)
            if conditional and error.status_code in {404, 409, 412} and code != "TableNotFound":
                index = getattr(error, "index", None)
                raise Conflict(f"{error.status_code} {code}", index) from error
            raise LedgerUnavailable(
                f"ledger table {self.table_name} {describe_error(error)}"
            ) from error
        except AzureError as error:
            raise LedgerUnavailable(
                f"ledger table {self.table_name} {describe_error(error)}"
            ) from error

    def _create_table(self) -> None:
        try:
            self._client.create_table()
            log.info("created ledger table %s", self.table_name)
        except ResourceExistsError:
            pass

    def ensure_table(self) -> None:
        """Create the table if missing."""
        self._call(self._create_table)

    def _read(self, partition: str, keys: list[str]) -> dict[str, TableEntity]:
        """The stored rows among `keys`, one point read each.

        Never one query for several keys: a filter that ORs row keys is served as a scan of
        the whole partition, which grows with the retention.
        """
        found: dict[str, TableEntity] = {}
        for key in dict.fromkeys(keys):
            row = self._call(partial(self._get, partition, key))
            if row is not None:
                found[key] = row
        return found

    def _get(self, partition: str, key: str) -> TableEntity | None:
        """One row, or None if it does not exist (a missing table still raises)."""
        try:
            return self._client.get_entity(partition, key)
        except ResourceNotFoundError as error:
            if error_code(error) == "TableNotFound":
                raise
            return None

    def _transact(self, operations: list[Operation]) -> list[str]:
        """Write in one entity group transaction; returns each operation's new ETag."""
        return self._call(lambda: self._transport.submit(operations), conditional=True)

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()
