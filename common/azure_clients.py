"""The Azure Storage clients the services build: one credential choice, endpoints, time bounds.

A connection string (Azurite, account keys) wins; without one, the account name and
`DefaultAzureCredential` (a managed identity in Azure) reach the account's endpoints: the public
cloud's, or the full URLs the settings give (sovereign clouds, an emulator in OAuth mode).
Every client gets its socket timeouts through `common.http`'s transport and a bounded retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.storage.queue import LinearRetry, QueueClient
from requests.adapters import DEFAULT_POOLSIZE

from common.http import transport
from common.settings import StorageSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from azure.data.tables import TableClient

Client = TypeVar("Client", "QueueClient", "TableClient")


@dataclass(frozen=True)
class ClientTimeouts:
    """How long one storage call may take: socket timeouts and SDK retries."""

    connection_timeout_s: float
    read_timeout_s: float
    retries: int = 1
    retry_backoff_s: float = 0.0


# What a 403 from Azure Storage means for an operator, by its error code.
# https://learn.microsoft.com/en-us/rest/api/storageservices/common-rest-api-error-codes
_FORBIDDEN = {
    "AuthenticationFailed": "the account key (or SAS) is wrong for this account",
    "AuthorizationPermissionMismatch": (
        "the identity has no data role on this account (e.g. Storage Queue Data Contributor)"
    ),
    "AuthorizationFailure": "the account's network rules or the identity's roles refuse it",
}
_ATTEMPTED = re.compile(r"^\s+(\w+Credential):", re.MULTILINE)


def describe_error(error: AzureError) -> str:
    """One line naming the cause of a failed storage call, to follow the client's name.

    `answered 403 AuthenticationFailed: the account key ...` for a service's answer, `failed:
    ...` for a request that never left: a key that cannot sign, no usable credential.
    """
    first_line = (str(error.message or error).strip().splitlines() or [type(error).__name__])[0]
    if type(error).__name__ == "AzureSigningError":
        return (
            "failed: the account key cannot sign requests, it is not base64 "
            f"({first_line.split('.')[0]})"
        )
    if isinstance(error, ClientAuthenticationError) and error.response is None:
        tried = _ATTEMPTED.findall(str(error.message or error))
        sources = f": DefaultAzureCredential tried {', '.join(tried)}" if tried else ""
        return (
            f"failed: no usable Azure credential{sources}; in Azure assign a managed identity, "
            "locally sign in with `az login` or set AZURE_STORAGE_CONNECTION_STRING"
        )
    if isinstance(error, HttpResponseError) and error.status_code is not None:
        code = getattr(error, "error_code", None) or ""
        return describe_answer(error.status_code, str(getattr(code, "value", code)), first_line)
    return f"failed: {type(error).__name__}: {first_line}"


def describe_answer(status: int, code: str, reason: str) -> str:
    """`answered <status> <code>`, with what a 403's code means for an operator."""
    meaning = _FORBIDDEN.get(code) if status == 403 else None
    because = f": {meaning}" if meaning else ""
    return f"answered {status} {code or reason}{because}"


def endpoint(account_name: str | None, service: str) -> str:
    """The public-cloud URL of an account's `queue` or `table` service."""
    return f"https://{account_name}.{service}.core.windows.net"


def service_url(storage: StorageSettings, service: str) -> str:
    """The URL of the `queue` or `table` service: the one configured, else the public cloud's."""
    configured = storage.queue_endpoint if service == "queue" else storage.table_endpoint
    return configured.rstrip("/") if configured else endpoint(storage.account_name, service)


def _build(
    client_class: type[Client],
    storage: StorageSettings,
    service: str,
    name: str,
    options: dict[str, Any],
) -> Client:
    """The client on `name`: by connection string when there is one, else by Entra ID."""
    if storage.connection_string:
        return client_class.from_connection_string(storage.connection_string, name, **options)
    from azure.identity import DefaultAzureCredential  # only needed without a connection string

    credential = DefaultAzureCredential()
    return client_class(service_url(storage, service), name, credential=credential, **options)


def queue_client(
    storage: StorageSettings,
    queue_name: str,
    timeouts: ClientTimeouts,
    connections: int = DEFAULT_POOLSIZE,
) -> QueueClient:
    """A queue client bounded by `timeouts`, keeping up to `connections` connections open."""
    options: dict[str, Any] = {
        "transport": transport(timeouts.connection_timeout_s, timeouts.read_timeout_s, connections),
        # The storage SDK's own retry policy: fixed waits, no jitter.
        "retry_policy": LinearRetry(
            # Typed as whole seconds, used as any number of seconds.
            backoff=timeouts.retry_backoff_s,  # type: ignore[arg-type]
            retry_total=timeouts.retries,
            random_jitter_range=0,
        ),
    }
    return _build(QueueClient, storage, "queue", queue_name, options)


def table_client(
    storage: StorageSettings,
    table_name: str,
    timeouts: ClientTimeouts,
    hook: Callable[[Any], None],
) -> TableClient:
    """A table client bounded by `timeouts` that reports every response to `hook`."""
    # Imported here: azure-data-tables is the backend's alone; the frontend image lacks it.
    from azure.core.pipeline.policies import RetryMode
    from azure.data.tables import TableClient

    options: dict[str, Any] = {
        "transport": transport(timeouts.connection_timeout_s, timeouts.read_timeout_s),
        "retry_total": timeouts.retries,
        "retry_backoff_factor": timeouts.retry_backoff_s,
        "retry_mode": RetryMode.Fixed,
        "raw_response_hook": hook,
    }
    return _build(TableClient, storage, "table", table_name, options)
