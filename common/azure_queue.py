"""The Azure Storage Queue behind both queue roles, and the factory both services use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.queue import QueueClient
from requests.adapters import DEFAULT_POOLSIZE

from common.azure_clients import (
    ClientTimeouts,
    describe_answer,
    describe_error,
    queue_client,
)
from common.queue import MessageGone, QueueMessage, QueueUnavailable, poison_record
from common.queue_put import PutRefused, PutUnreachable, RestPut, rest_put_for
from common.settings import StorageSettings
from common.tokens import TokenUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


# The frontend must answer GitHub well inside its 10 s limit: two attempts of at most 1 s to
# connect and 2.5 s to answer, cut at the request's answer deadline (5.5 s from its arrival).
# A 1.5 s read timeout gave up on puts a loaded queue was still accepting (0.5% of a 15 minute
# soak at 80/s, every one of them queued after all); the budget is better spent waiting. The
# backend can afford to wait longer on each call.
FRONTEND_TIMEOUTS = ClientTimeouts(connection_timeout_s=1.0, read_timeout_s=2.5, retries=1)
BACKEND_TIMEOUTS = ClientTimeouts(connection_timeout_s=5.0, read_timeout_s=20.0, retries=2)


# Messages and poison records never expire: Azure's default time-to-live (7 days) would drop
# an old backlog, or anything in poison, without a trace.
# https://learn.microsoft.com/en-us/rest/api/storageservices/put-message#uri-parameters
NEVER_EXPIRES = -1


def error_code(error: HttpResponseError) -> str:
    """The service's error code of a failed call, as text ("QueueNotFound", "TableNotFound")."""
    code = getattr(error, "error_code", None) or ""
    return str(getattr(code, "value", code))


def _is_gone(error: HttpResponseError) -> bool:
    # Delete/update answer 404 MessageNotFound or 400 PopReceiptMismatch once the message is
    # no longer ours; only those two calls may mean that (a 404 elsewhere is a wrong endpoint).
    # https://learn.microsoft.com/en-us/rest/api/storageservices/queue-service-error-codes
    return error_code(error) in {"MessageNotFound", "PopReceiptMismatch"} or (
        error.status_code == 404 and error_code(error) != "QueueNotFound"
    )


def _is_forbidden(error: QueueUnavailable) -> bool:
    cause = error.__cause__
    return isinstance(cause, HttpResponseError) and cause.status_code in {401, 403}


class AzureQueue:
    """Both queue roles over azure-storage-queue; SDK errors become QueueUnavailable/MessageGone.

    Safe to share between threads: up to `connections` calls at a time on each of its two
    queues keep their connections open for the next call. `send` puts with `RestPut` when
    `rest_put_for` allows it (`common/queue_put.py` says why), else with the SDK; `rest_put`
    False keeps every call on the SDK.
    """

    def __init__(
        self,
        settings: StorageSettings,
        timeouts: ClientTimeouts = BACKEND_TIMEOUTS,
        connections: int = DEFAULT_POOLSIZE,
        rest_put: bool = True,
    ):
        self.name = settings.queue_name
        self._queue = queue_client(settings, settings.queue_name, timeouts, connections)
        self._poison = queue_client(settings, settings.poison_queue_name, timeouts, connections)
        self._created: set[str] = set()
        self._put: RestPut | None = None
        why = "as asked"
        if rest_put:
            self._put, why = rest_put_for(self._queue, timeouts, connections)
        how = "on urllib3" if self._put is not None else "through the SDK"
        log.info("queue %s: messages are put %s (%s)", self.name, how, why)

    def _call(self, client: QueueClient, operation: Callable[[], T], on_message: bool = False) -> T:
        """Run `operation`; `on_message` (delete, update) lets a 404 or stale receipt mean gone."""
        try:
            try:
                return operation()
            except HttpResponseError as error:
                if error_code(error) != "QueueNotFound":
                    raise
                self._create(client)
                return operation()
        except HttpResponseError as error:
            if on_message and _is_gone(error):
                raise MessageGone(f"{error.status_code} {error_code(error)}") from error
            raise QueueUnavailable(f"queue {client.queue_name} {describe_error(error)}") from error
        except (ServiceRequestError, ServiceResponseError) as error:
            raise QueueUnavailable(f"queue {client.queue_name} unreachable: {error}") from error
        except AzureError as error:
            raise QueueUnavailable(f"queue {client.queue_name} {describe_error(error)}") from error

    def _create(self, client: QueueClient) -> None:
        try:
            client.create_queue()
            log.info("created queue %s", client.queue_name)
        except ResourceExistsError:
            pass

    def ensure_queues(self) -> None:
        """Create the queue and its poison queue if missing."""
        for client in (self._queue, self._poison):
            self._call(client, lambda c=client: self._create(c))  # type: ignore[misc]

    def send(self, content: str) -> str:
        if self._put is not None:
            return self._put_message(self._put, content)
        return self._sdk_send(content)

    def _sdk_send(self, content: str) -> str:
        sent = self._call(
            self._queue, lambda: self._queue.send_message(content, time_to_live=NEVER_EXPIRES)
        )
        return str(sent.id)

    def _put_message(self, put: RestPut, content: str) -> str:
        """Put with `put`; a missing queue is created (by the SDK) and the put tried again."""
        name = self._queue.queue_name
        try:
            try:
                return put.put(content, NEVER_EXPIRES)
            except PutRefused as refused:
                if refused.status == 401:
                    # A token refused with a challenge (another tenant, another resource): the
                    # SDK's bearer policy answers challenges, so this put goes its way.
                    return self._sdk_send(content)
                if refused.code != "QueueNotFound":
                    raise
                self._call(self._queue, lambda: self._create(self._queue))
                return put.put(content, NEVER_EXPIRES)
        except PutRefused as refused:
            described = describe_answer(refused.status, refused.code, refused.reason)
            raise QueueUnavailable(f"queue {name} {described}") from refused
        except PutUnreachable as error:
            raise QueueUnavailable(f"queue {name} unreachable: {error}") from error
        except TokenUnavailable as error:
            raise QueueUnavailable(f"queue {name} {describe_error(error.cause)}") from error

    def receive(self, max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        def one_page() -> list[QueueMessage]:
            # One page is one Get Messages request of up to 32 messages.
            pages = self._queue.receive_messages(
                messages_per_page=max_messages,
                max_messages=max_messages,
                visibility_timeout=visibility_timeout_s,
            ).by_page()
            page: list[Any] = list(next(pages, []))
            return [
                QueueMessage(
                    id=str(item.id),
                    pop_receipt=str(item.pop_receipt),
                    content=str(item.content or ""),
                    dequeue_count=int(item.dequeue_count or 0),
                    inserted_on=item.inserted_on,
                )
                for item in page
            ]

        return self._call(self._queue, one_page)

    def delete(self, message: QueueMessage) -> None:
        self._call(
            self._queue,
            lambda: self._queue.delete_message(message.id, message.pop_receipt),
            on_message=True,
        )

    def extend(self, message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        updated = self._call(
            self._queue,
            lambda: self._queue.update_message(
                message.id, message.pop_receipt, visibility_timeout=visibility_timeout_s
            ),
            on_message=True,
        )
        return QueueMessage(
            id=message.id,
            pop_receipt=str(updated.pop_receipt),
            content=message.content,
            dequeue_count=message.dequeue_count,
            inserted_on=message.inserted_on,
        )

    def release(self, message: QueueMessage) -> None:
        self._call(
            self._queue,
            lambda: self._queue.update_message(
                message.id, message.pop_receipt, visibility_timeout=0
            ),
            on_message=True,
        )

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        record = poison_record(message, reason, self.name, datetime.now(UTC))
        # Copy first, delete second: a crash in between leaves a duplicate, never a loss.
        self.send_poison(record)
        self.delete(message)

    def send_poison(self, record: str) -> None:
        self._call(
            self._poison, lambda: self._poison.send_message(record, time_to_live=NEVER_EXPIRES)
        )

    def ping(self) -> None:
        self._call(self._queue, self._queue.get_queue_properties)

    def close(self) -> None:
        """Close the HTTP sessions."""
        self._queue.close()
        self._poison.close()
        if self._put is not None:
            self._put.close()


def create_queue(
    settings: StorageSettings,
    timeouts: ClientTimeouts = BACKEND_TIMEOUTS,
    connections: int = DEFAULT_POOLSIZE,
    rest_put: bool = True,
) -> AzureQueue:
    """Build the queue client and create the queues if they are missing (best effort)."""
    queue = AzureQueue(settings, timeouts, connections, rest_put)
    try:
        queue.ensure_queues()
    except QueueUnavailable as error:
        # The service may start before the queue is reachable; calls create it on first use.
        # A refusal (key, credential, role) is no outage: say so louder, with its cause.
        if isinstance(error.__cause__, ClientAuthenticationError) or _is_forbidden(error):
            log.error("queue %s refused at start: %s", settings.queue_name, error)
        else:
            log.warning("queue %s not reachable at start: %s", settings.queue_name, error)
    return queue
