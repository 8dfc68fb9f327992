"""Counted once, end to end: the real pool of 4 workers, Azurite and the ingestion server."""

from __future__ import annotations

import time

import pytest

from backend.idempotency import ClaimStatus, LedgerSettings, TableLedger
from backend.telemetry.keys import event_key
from common.envelope import decode, utc_now
from common.settings import StorageSettings
from tests.backend.dedupe import VISIBILITY_S, Pool, count_lines, via
from tests.backend.fakes import message_text
from tests.backend.harness import wait_until
from tests.backend.test_pool_integration import deliveries, expected, received
from tests.tcp_proxy import ProxyFactory
from tools.azurite import Azurite
from tools.payloads import JOB_ID, workflow_job_payload, workflow_run_payload

pytestmark = [pytest.mark.azurite, pytest.mark.slow]


def drained(pool: Pool, what: str) -> None:
    wait_until(lambda: pool.probe.count() == 0, timeout_s=45, what=what)


def test_redeliveries_and_a_second_hook_are_exported_once_by_four_workers(pool: Pool) -> None:
    # Given 8 events, each delivered three times by GitHub and once more by a second hook,
    # sent round by round so the copies of an event land in different batches and workers
    payloads = [workflow_run_payload("completed")] + [
        workflow_job_payload("completed", id=JOB_ID + index, name=f"job-{index}")
        for index in range(1, 8)
    ]
    originals = [message_text(p, delivery_id=f"d-{i}") for i, p in enumerate(payloads)]
    second_hook = [message_text(p, delivery_id=f"hook-2-{i}") for i, p in enumerate(payloads)]
    for copies in (originals, originals, second_hook, originals):
        for text in copies:
            pool.probe.send(text)

    # When 4 workers drain them concurrently, and GitHub redelivers some once more later
    backend = pool.start(MAX_MESSAGES_PER_BATCH="3", LEDGER_LEASE_SECONDS=str(VISIBILITY_S))
    drained(pool, "the copies drained")
    for text in originals[:3]:
        pool.probe.send(text)
    drained(pool, "the late redeliveries drained")

    # Then every event reached the ingestion exactly once, and every copy was deleted
    assert received(pool.ingestion) == expected(originals)
    assert pool.probe.poison_records() == []
    assert {state for state, _owner in pool.ledger.rows().values()} == {"done"}
    assert len(pool.ledger.rows()) == len(payloads)
    assert count_lines(backend, "done: duplicate: event ") >= 3
    assert backend.stop() == 0


def test_late_lifecycle_deliveries_do_not_make_a_finished_job_look_running(pool: Pool) -> None:
    completed = message_text(workflow_job_payload("completed"), delivery_id="d-completed")
    # Out of order in one batch: the `queued` arrives behind its own `completed`.
    pool.probe.send(completed)
    pool.probe.send(message_text(workflow_job_payload("queued"), delivery_id="d-queued"))
    backend = pool.start(WORKER_PROCESSES="1")
    drained(pool, "completed and queued drained")

    # Late: an `in_progress` redelivered after the job was exported as completed.
    pool.probe.send(message_text(workflow_job_payload("in_progress"), delivery_id="d-late"))
    drained(pool, "the late in_progress drained")

    assert received(pool.ingestion) == expected([completed])
    names = {event["data"]["baseData"]["name"] for event in pool.ingestion.events()}
    assert names == {"WorkflowJob", "WorkflowStep"}
    assert count_lines(backend, "done: late lifecycle event: workflow_job:") == 2
    assert backend.stop() == 0


def test_a_claim_left_by_a_dead_worker_is_taken_over_once_its_lease_passed(
    pool: Pool, azurite: Azurite
) -> None:
    # Given a pool running, and a worker elsewhere that claimed two events, then died
    backend = pool.start(WORKER_PROCESSES="2", LEDGER_LEASE_SECONDS=str(VISIBILITY_S))
    wait_until(lambda: backend.workers_ready(2), what="workers started")
    texts = deliveries(2)
    storage = StorageSettings(azurite.connection_string, None, "unused")
    dead = TableLedger(storage, LedgerSettings(table_name=pool.ledger.table_name, lease_s=2))
    keys = [event_key(decode(text)) for text in texts]
    assert set(dead.claim(keys, "elsewhere:1:dead", utc_now()).values()) == {ClaimStatus.CLAIMED}
    dead.close()

    # When their messages reach the pool
    for text in texts:
        pool.probe.send(text)
    drained(pool, "the events taken over")

    # Then they were busy at first, and exported once after the lease
    assert count_lines(backend, "another worker holds event") >= 1
    assert received(pool.ingestion) == expected(texts)
    assert {owner for _state, owner in pool.ledger.rows().values()} != {"elsewhere:1:dead"}
    assert backend.stop() == 0


def test_an_unreachable_ledger_holds_the_batches_losing_doubling_and_poisoning_nothing(
    pool: Pool, azurite: Azurite, make_proxy: ProxyFactory
) -> None:
    table = make_proxy(azurite.table_port)
    backend = pool.start(
        connection_string=via(azurite, table_port=table.port),
        MAX_DEQUEUE_COUNT="1",
        MAX_MESSAGES_PER_BATCH="2",
        LEDGER_LEASE_SECONDS=str(VISIBILITY_S),
    )
    wait_until(lambda: backend.workers_ready(4), what="workers started")
    texts = deliveries(4)

    table.refuse()
    for text in texts + texts:
        pool.probe.send(text)
    # The outage itself, longer than MAX_DEQUEUE_COUNT x visibility: a worker that kept
    # receiving would have sent every message to poison by now.
    time.sleep(VISIBILITY_S + 1.5)
    assert pool.ingestion.events() == []
    assert pool.probe.count() == len(texts) * 2
    assert pool.probe.poison_records() == []

    table.restore()
    drained(pool, "the queue drained after the ledger came back")

    assert received(pool.ingestion) == expected(texts)
    assert pool.probe.poison_records() == []
    assert count_lines(backend, "ledger unavailable (") >= 1
    assert count_lines(backend, "ledger answers again") >= 1
    assert backend.stop() == 0
