"""How the ledger connects to Azure Tables: the client and its time bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline.policies import RetryMode
from azure.data.tables import TableClient

from common.http import transport
from common.settings import StorageSettings


@dataclass(frozen=True)
class LedgerTimeouts:
    """How long one ledger call may take: socket timeouts and SDK retries."""

    connection_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    retries: int = 2
    retry_backoff_s: float = 0.5


def table_client(
    storage: StorageSettings, table_name: str, timeouts: LedgerTimeouts, hook: Callable[[Any], None]
) -> TableClient:
    """A table client bounded by `timeouts` that reports every response to `hook`."""
    options: dict[str, Any] = {
        "transport": transport(timeouts.connection_timeout_s, timeouts.read_timeout_s),
        "retry_total": timeouts.retries,
        "retry_backoff_factor": timeouts.retry_backoff_s,
        "retry_mode": RetryMode.Fixed,
        "raw_response_hook": hook,
    }
    if storage.connection_string:
        return TableClient.from_connection_string(storage.connection_string, table_name, **options)
    from azure.identity import DefaultAzureCredential  # only needed without a connection string

    endpoint = f"https://{storage.account_name}.table.core.windows.net"
    return TableClient(endpoint, table_name, credential=DefaultAzureCredential(), **options)
