"""Fixtures for backend tests: a worker over the in-memory queue and the recording sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from backend.idempotency import LedgerSettings
from backend.processor import Processor
from backend.shutdown import Stopper
from backend.sinks.memory import RecordingSink
from backend.worker import Worker, WorkerConfig
from tests.backend.dedupe import pool  # noqa: F401 (a fixture)
from tests.backend.fakes import CountingQueue, FakeTime
from tests.backend.ledgered import LEASE_S, OWNER, CountingLedger, wall_clock
from tests.tcp_proxy import make_proxy  # noqa: F401 (a fixture)
from tools.ingestion_server import IngestionServer

VISIBILITY_S = 10
MAX_DEQUEUE_COUNT = 5

CONFIG = WorkerConfig(
    max_messages_per_batch=32,
    visibility_timeout_s=VISIBILITY_S,
    poll_interval_s=5.0,
    queue_backoff_initial_s=0.5,
    queue_backoff_cap_s=8.0,
    sink_backoff_initial_s=0.5,
    sink_backoff_cap_s=8.0,
)


@pytest.fixture
def stopper() -> Stopper:
    return Stopper()


@pytest.fixture
def fake_time(stopper: Stopper) -> FakeTime:
    return FakeTime(stopper)


@pytest.fixture
def queue(fake_time: FakeTime) -> CountingQueue:
    return CountingQueue(clock=fake_time.clock)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


WorkerFactory = Callable[..., Worker]


@pytest.fixture
def make_worker(
    queue: CountingQueue, sink: RecordingSink, stopper: Stopper, fake_time: FakeTime
) -> WorkerFactory:
    """Build a worker over the fixtures; keyword arguments override the config or processor."""

    def build(processor: Processor | None = None, **config: object) -> Worker:
        settings = replace(CONFIG, **config)  # type: ignore[arg-type]
        return Worker(
            queue,
            processor or Processor(sink, max_dequeue_count=MAX_DEQUEUE_COUNT),
            settings,
            stopper=stopper,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
        )

    return build


@pytest.fixture
def ledger() -> CountingLedger:
    return CountingLedger(lease_s=LEASE_S)


@pytest.fixture
def processor(sink: RecordingSink, ledger: CountingLedger, fake_time: FakeTime) -> Processor:
    """A processor deduplicating through the in-memory ledger, on the fake clock."""
    return Processor(
        sink,
        MAX_DEQUEUE_COUNT,
        ledger=ledger,
        ledger_settings=LedgerSettings(lease_s=LEASE_S, purge_interval_s=60),
        owner=OWNER,
        now=lambda: wall_clock(fake_time),
    )


@pytest.fixture
def ingestion_server() -> Iterator[IngestionServer]:
    """A running local ingestion endpoint, stopped after the test."""
    server = IngestionServer().start()
    try:
        yield server
    finally:
        server.stop()
