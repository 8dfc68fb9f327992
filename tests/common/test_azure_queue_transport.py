"""The Azure queue's HTTP transport: its timeouts hold, and concurrent calls reuse connections."""

from __future__ import annotations

import threading
import time

import pytest

from common.azure_clients import ClientTimeouts
from common.azure_queue import AzureQueue
from common.queue import QueueUnavailable
from common.settings import StorageSettings
from tests.storage_server import OK, TRICKLE, TRICKLE_INTERVAL_S, storage_server

CALLERS = 16
CALLS_EACH = 5


def test_the_read_timeout_bounds_a_call_whose_answer_is_late() -> None:
    timeouts = ClientTimeouts(connection_timeout_s=1.0, read_timeout_s=0.2, retries=0)
    with storage_server(TRICKLE) as server:
        queue = AzureQueue(StorageSettings(server.connection_string, None, "hooks"), timeouts)

        started = time.monotonic()
        with pytest.raises(QueueUnavailable):
            queue.send("text")
        elapsed_s = time.monotonic() - started

        queue.close()
    assert elapsed_s < TRICKLE_INTERVAL_S  # it gave up before the first byte of the answer


def test_concurrent_callers_reuse_one_pooled_connection_each() -> None:
    with storage_server(OK) as server:
        settings = StorageSettings(server.connection_string, None, "hooks")
        queue = AzureQueue(settings, connections=CALLERS)
        barrier = threading.Barrier(CALLERS, timeout=5.0)
        failures: list[BaseException] = []

        def call() -> None:
            try:
                for _ in range(CALLS_EACH):
                    barrier.wait()
                    queue.send("text")
            except BaseException as error:
                failures.append(error)

        threads = [threading.Thread(target=call) for _ in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
        queue.close()

    assert (failures, server.requests) == ([], CALLERS * CALLS_EACH)
    assert server.connections <= CALLERS  # a connection dropped for a full pool is reopened
