"""How AzureQueue names the errors of a queue endpoint, per call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.azure_queue import FRONTEND_TIMEOUTS, AzureQueue
from common.queue import MessageGone, QueueMessage, QueueUnavailable
from common.settings import StorageSettings
from tests.storage_server import NOT_FOUND, storage_server

MESSAGE = QueueMessage("stub-message", "stub-receipt", "text", 1)

QUEUE_CALLS: dict[str, Callable[[AzureQueue], object]] = {
    "send": lambda queue: queue.send("text"),
    "receive": lambda queue: queue.receive(32, 30),
    "ping": lambda queue: queue.ping(),
    "send_poison": lambda queue: queue.send_poison("record"),
}
MESSAGE_CALLS: dict[str, Callable[[AzureQueue], object]] = {
    "delete": lambda queue: queue.delete(MESSAGE),
    "extend": lambda queue: queue.extend(MESSAGE, 30),
    "release": lambda queue: queue.release(MESSAGE),
}


def _queue(connection_string: str) -> AzureQueue:
    return AzureQueue(StorageSettings(connection_string, None, "hooks"), FRONTEND_TIMEOUTS)


@pytest.mark.parametrize("call", QUEUE_CALLS.values(), ids=list(QUEUE_CALLS))
def test_a_bare_404_on_a_queue_call_is_unavailable_not_gone(
    call: Callable[[AzureQueue], object],
) -> None:
    with storage_server(NOT_FOUND) as server:
        queue = _queue(server.connection_string)

        with pytest.raises(QueueUnavailable, match="answered 404"):
            call(queue)

        queue.close()


@pytest.mark.parametrize("call", MESSAGE_CALLS.values(), ids=list(MESSAGE_CALLS))
def test_a_404_on_a_message_call_means_the_message_is_gone(
    call: Callable[[AzureQueue], object],
) -> None:
    with storage_server(NOT_FOUND) as server:
        queue = _queue(server.connection_string)

        with pytest.raises(MessageGone):
            call(queue)

        queue.close()
