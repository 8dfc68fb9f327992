"""The real pool (`python -m backend`) against Azurite and the local ingestion server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.sinks.base import format_time
from backend.telemetry.mapping import to_telemetry
from common.envelope import decode, utc_now
from common.settings import StorageSettings
from tests.backend.fakes import message_text, pack_text
from tests.backend.harness import BackendProcess, QueueProbe, wait_until
from tests.idempotency.conftest import unique_table_name
from tools.ingestion_server import IngestionServer
from tools.payloads import JOB_ID, WORKFLOW_NAME, workflow_job_payload, workflow_run_payload

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

Signature = tuple[str, str, str, str, float]


def deliveries(count: int = 3) -> list[str]:
    """Queue texts: one completed run and `count - 1` completed jobs (each with four steps)."""
    payloads = [workflow_run_payload("completed")] + [
        workflow_job_payload("completed", id=JOB_ID + index, name=f"job-{index}")
        for index in range(1, count)
    ]
    return [message_text(p, delivery_id=f"d-{i}") for i, p in enumerate(payloads)]


def expected(texts: list[str]) -> list[Signature]:
    """What the ingestion must receive for `texts`, each event once."""
    items = [item for text in texts for item in to_telemetry(decode(text), utc_now())]
    return sorted(
        (
            item.name,
            format_time(item.timestamp),
            item.operation_id,
            item.parent_id,
            item.measurements["duration_seconds"],
        )
        for item in items
    )


def received(server: IngestionServer) -> list[Signature]:
    """The accepted custom events, reduced to what identifies them."""
    return sorted(
        (
            event["data"]["baseData"]["name"],
            # Fixture times are years old: each is sent at its export time and keeps its own.
            event["data"]["baseData"]["properties"]["event_time"],
            event["tags"]["ai.operation.id"],
            event["tags"].get("ai.operation.parentId", ""),
            event["data"]["baseData"]["measurements"]["duration_seconds"],
        )
        for event in server.events()
    )


@pytest.fixture
def probe(storage_settings: StorageSettings) -> Iterator[QueueProbe]:
    queue_probe = QueueProbe(storage_settings)
    yield queue_probe
    queue_probe.close()


@pytest.fixture
def start_backend(
    storage_settings: StorageSettings, ingestion_server: IngestionServer, tmp_path: Path
) -> Iterator[Any]:
    """Start `python -m backend` pointed at the ingestion server; kills leftovers at the end.

    Every pool of one test shares a ledger table of the test's own: the tests send the same
    events, which another test's ledger would know as exported.
    """
    started: list[BackendProcess] = []
    table_name = unique_table_name()

    def start(**variables: str) -> BackendProcess:
        settings = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion_server.connection_string,
            "WORKER_PROCESSES": "1",
            "VISIBILITY_TIMEOUT_SECONDS": "4",
            "LEDGER_TABLE_NAME": table_name,
            **variables,
        }
        backend = BackendProcess(tmp_path, storage_settings, **settings)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        if backend.process.poll() is None:
            backend.kill()


def test_events_arrive_as_custom_events_with_names_properties_and_durations(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(3)
    for text in texts:
        probe.send(text)

    backend = start_backend(WORKER_PROCESSES="2")
    wait_until(lambda: probe.count() == 0, what="queue drained")

    assert received(ingestion_server) == expected(texts)
    job = next(
        e for e in ingestion_server.events() if e["data"]["baseData"]["name"] == "WorkflowJob"
    )
    [mapped] = [i for i in to_telemetry(decode(texts[1]), utc_now()) if i.name == "WorkflowJob"]
    assert job["data"]["baseData"]["properties"] == {
        **mapped.properties,
        "event_time": "2024-03-05T10:02:40.000000Z",
        "is_late": "true",
    }
    assert job["tags"]["ai.cloud.role"] == "github-telemetry-backend"
    assert {e["tags"]["ai.operation.name"] for e in ingestion_server.events()} == {WORKFLOW_NAME}
    assert backend.stop() == 0
    assert probe.poison_records() == []


def test_packed_messages_are_drained_with_each_event_once(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(5)
    probe.send(pack_text(*texts[:3]))
    probe.send(pack_text(*texts[3:]))
    probe.send(texts[4])  # a single-envelope copy of a packed event: exported once

    backend = start_backend(WORKER_PROCESSES="2")
    wait_until(lambda: probe.count() == 0, what="queue drained")

    assert received(ingestion_server) == expected(texts)
    assert backend.stop() == 0
    assert probe.poison_records() == []


def test_an_ingestion_outage_longer_than_the_dequeue_budget_loses_and_poisons_nothing(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(4)
    for text in texts:
        probe.send(text)
    ingestion_server.refuse()
    # MAX_DEQUEUE_COUNT x visibility = 4 s; the outage below lasts about 7.5 s.
    backend = start_backend(
        WORKER_PROCESSES="2", MAX_DEQUEUE_COUNT="2", VISIBILITY_TIMEOUT_SECONDS="2"
    )
    wait_until(lambda: backend.workers_ready(2), what="workers started")

    for phase in ("refused", "503", "429"):
        if phase == "503":
            ingestion_server.answer(503)
        elif phase == "429":
            ingestion_server.answer(429, retry_after="1")
        time.sleep(2.5)  # the outage itself: this is what the test is about
        assert probe.count() == len(texts), phase
        assert probe.poison_records() == [], phase
    assert {status for _path, status in ingestion_server.requests} == {503, 429}

    ingestion_server.recover()
    wait_until(lambda: probe.count() == 0, timeout_s=45, what="queue drained after recovery")

    assert received(ingestion_server) == expected(texts)
    assert probe.poison_records() == []
    assert backend.stop() == 0
    assert not [m for m in backend.messages() if ": poison: " in m]


def test_undecodable_and_overdelivered_messages_go_to_poison_and_the_pool_goes_on(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    [overdelivered, good, later] = deliveries(3)
    probe.send(overdelivered)
    for _ in range(2):
        [message] = probe.queue.receive(1, visibility_timeout_s=30)
        probe.queue.release(message)
    probe.send("this is not an envelope")
    probe.send(good)

    backend = start_backend(MAX_DEQUEUE_COUNT="2")
    wait_until(lambda: len(probe.poison_records()) == 2, what="two poison records")
    probe.send(later)
    wait_until(lambda: probe.count() == 0, what="queue drained")

    reasons = sorted(str(record["reason"]) for record in probe.poison_records())
    assert reasons[0].startswith("EnvelopeError: not base64-encoded gzip")
    assert reasons[1] == "received 3 times, more than MAX_DEQUEUE_COUNT (2)"
    assert received(ingestion_server) == expected([good, later])
    assert backend.stop() == 0


def test_a_killed_worker_is_respawned_and_its_batch_is_exported_once(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(3)
    for text in texts:
        probe.send(text)
    ingestion_server.answer(503)  # the worker holds its batch, so it is killed mid-batch

    backend = start_backend(VISIBILITY_TIMEOUT_SECONDS="2")
    wait_until(lambda: ingestion_server.received >= 1, what="an export attempt")
    [first_worker] = backend.worker_pids()
    os.kill(first_worker, signal.SIGKILL)
    wait_until(lambda: len(backend.worker_pids()) == 2, what="the worker respawned")
    ingestion_server.recover()
    wait_until(lambda: probe.count() == 0, what="queue drained")

    assert received(ingestion_server) == expected(texts)
    assert backend.stop() == 0


def test_sigterm_mid_batch_finishes_the_batch_and_the_rest_waits_for_the_next_pool(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(4)
    for text in texts:
        probe.send(text)
    ingestion_server.delay_s = 1.5

    backend = start_backend(MAX_MESSAGES_PER_BATCH="2", VISIBILITY_TIMEOUT_SECONDS="5")
    wait_until(lambda: ingestion_server.received >= 1, what="an export in flight")
    backend.signal(signal.SIGTERM)

    assert backend.wait() == 0
    assert probe.count() == 2  # the batch in hand was exported and deleted, not abandoned
    assert received(ingestion_server) == expected(texts[:2])

    ingestion_server.delay_s = 0.0
    second = start_backend()
    wait_until(lambda: probe.count() == 0, what="queue drained by the next pool")
    assert received(ingestion_server) == expected(texts)
    assert second.stop() == 0


def test_sigterm_during_an_outage_exits_cleanly_and_loses_nothing(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(3)
    for text in texts:
        probe.send(text)
    ingestion_server.answer(503)

    backend = start_backend(WORKER_PROCESSES="2")
    wait_until(lambda: ingestion_server.received >= 1, what="a failed export")

    assert backend.stop() == 0
    assert probe.count() == len(texts)
    assert probe.poison_records() == []
    assert any("stop requested while holding" in m for m in backend.messages())
