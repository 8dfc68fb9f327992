"""Helpers for the deduplication tests: a pool per test with its own ledger, and its rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from azure.data.tables import TableClient

from common.settings import StorageSettings
from tests.backend.harness import BackendProcess, QueueProbe
from tests.conftest import unique_queue_name
from tests.idempotency.conftest import unique_table_name
from tools.azurite import Azurite
from tools.ingestion_server import IngestionServer

# Short enough for a fast test, long enough for a loaded machine: an export waits at most half
# the visibility timeout, and the ingestion server's delays stay well under that.
VISIBILITY_S = 3
LEASE_S = 4


def via(azurite: Azurite, queue_port: int | None = None, table_port: int | None = None) -> str:
    """Azurite's connection string with the queue and/or table endpoint on other ports."""
    text = azurite.connection_string
    if queue_port is not None:
        text = text.replace(f":{azurite.queue_port}/", f":{queue_port}/")
    if table_port is not None:
        text = text.replace(f":{azurite.table_port}/", f":{table_port}/")
    return text


@dataclass
class Ledger:
    """Reads a pool's ledger table straight from Azurite, as an operator would."""

    azurite: Azurite
    table_name: str = field(default_factory=unique_table_name)

    def rows(self) -> dict[str, tuple[str, str]]:
        """Every claimed or exported event key with its (state, owner).

        Rows that only mark a lifecycle key superseded (no state) are left out.
        """
        client = TableClient.from_connection_string(self.azurite.connection_string, self.table_name)
        with client:
            return {
                str(row["RowKey"]): (str(row["State"]), str(row["Owner"]))
                for row in client.query_entities("PartitionKey ne 'purge'")
                if "State" in row
            }

    def owner_pids(self, state: str) -> set[int]:
        """Pids of the workers owning rows in `state` (owners are `host:pid:random`)."""
        return {int(owner.split(":")[-2]) for st, owner in self.rows().values() if st == state}


@dataclass
class Pool:
    """What one deduplication test runs against."""

    probe: QueueProbe
    ledger: Ledger
    ingestion: IngestionServer
    start: Callable[..., BackendProcess]


@pytest.fixture
def pool(azurite: Azurite, ingestion_server: IngestionServer, tmp_path: Path) -> Iterator[Pool]:
    """A queue and a ledger table of the test's own; `start(**variables)` starts the pool.

    `start(connection_string=...)` points the pool (not the probe) at proxied endpoints.
    """
    storage = StorageSettings(azurite.connection_string, None, unique_queue_name("dedupe"))
    probe = QueueProbe(storage)
    ledger = Ledger(azurite)
    started: list[BackendProcess] = []

    def start(connection_string: str | None = None, **variables: str) -> BackendProcess:
        settings = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion_server.connection_string,
            "WORKER_PROCESSES": "4",
            "VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_S),
            "LEDGER_LEASE_SECONDS": str(LEASE_S),
            "LEDGER_TABLE_NAME": ledger.table_name,
            **variables,
        }
        target = StorageSettings(
            connection_string or storage.connection_string, None, storage.queue_name
        )
        backend = BackendProcess(tmp_path, target, **settings)
        started.append(backend)
        return backend

    yield Pool(probe, ledger, ingestion_server, start)
    for backend in started:
        if backend.process.poll() is None:
            backend.kill()
    probe.close()


def poll(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll `condition` every 5 ms until it holds; for moments a test must not miss."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(0.005)


def count_lines(backend: BackendProcess, needle: str) -> int:
    """How many log lines of the pool contain `needle`."""
    return sum(needle in message for message in backend.messages())
