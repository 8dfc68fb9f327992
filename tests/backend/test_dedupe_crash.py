"""A worker that exported a batch but never deleted it: its copies come back and are not re-sent.

Made deterministic without hooks in the product: a TCP proxy in front of Azurite's queue port
freezes while an export is under way, so the exporting worker hangs in `delete`; a SIGSTOP
pauses a worker past its messages' visibility; the ledger's `Owner` names the worker's pid.
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.backend.dedupe import Pool, count_lines, poll, via
from tests.backend.fakes import message_text
from tests.backend.harness import wait_until
from tests.backend.test_pool_integration import deliveries, expected, received
from tests.tcp_proxy import ProxyFactory
from tools.azurite import Azurite
from tools.payloads import workflow_job_payload

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

# How long the ingestion server takes to answer: the window in which the test acts, well
# under the sink's own timeout (half the visibility timeout).
EXPORT_S = 0.5


def exports_settled(pool: Pool) -> bool:
    """Every export request answered, and every ledger row it touched recorded as done."""
    rows = pool.ledger.rows()
    answered = len(pool.ingestion.requests) == pool.ingestion.received
    return answered and bool(rows) and {state for state, _owner in rows.values()} == {"done"}


def test_a_worker_killed_between_export_and_delete_is_not_exported_again(
    pool: Pool, azurite: Azurite, make_proxy: ProxyFactory
) -> None:
    # Given a pool whose queue traffic goes through a proxy, and a slow ingestion
    queue = make_proxy(azurite.queue_port)
    texts = deliveries(3)
    for text in texts:
        pool.probe.send(text)
    pool.ingestion.delay_s = EXPORT_S
    backend = pool.start(connection_string=via(azurite, queue_port=queue.port))

    # When the queue freezes during an export, the exporting worker completes the events in
    # the ledger and hangs in `delete`; then it is killed and the queue comes back
    poll(lambda: pool.ingestion.received >= 1, what="an export under way")
    queue.freeze()
    poll(lambda: exports_settled(pool), what="the export accepted and recorded as done")
    exporters = pool.ledger.owner_pids("done")
    for pid in exporters:
        os.kill(pid, signal.SIGKILL)
    queue.reset()  # drops the dead worker's connections and the `delete` they held
    pool.ingestion.delay_s = 0.0
    wait_until(lambda: pool.probe.count() == 0, timeout_s=45, what="the queue drained")

    # Then the copies that came back were deleted as duplicates, and nothing was sent twice
    assert exporters
    assert received(pool.ingestion) == expected(texts)
    assert count_lines(backend, "done: duplicate: event ") >= 1
    assert pool.probe.poison_records() == []
    assert backend.stop() == 0


def test_a_worker_paused_past_its_visibility_timeout_exports_once(pool: Pool) -> None:
    # Given one event, a slow ingestion, and a lease well over the visibility timeout
    text = message_text(workflow_job_payload("completed"), delivery_id="d-paused")
    pool.probe.send(text)
    pool.ingestion.delay_s = EXPORT_S
    backend = pool.start(
        WORKER_PROCESSES="2", VISIBILITY_TIMEOUT_SECONDS="2", LEDGER_LEASE_SECONDS="5"
    )

    # When the exporting worker pauses (a VM freeze, a long GC) until its message came back
    # to the other worker, which finds the event claimed and hides its copy
    poll(lambda: pool.ingestion.received >= 1, what="an export under way")
    [paused] = pool.ledger.owner_pids("claimed")
    os.kill(paused, signal.SIGSTOP)
    try:
        wait_until(
            lambda: count_lines(backend, "another worker holds event") >= 1,
            what="the copy received by the other worker and found busy",
        )
    finally:
        os.kill(paused, signal.SIGCONT)
    wait_until(lambda: pool.probe.count() == 0, timeout_s=45, what="the queue drained")

    # Then the paused worker's delete came too late, the copy was deleted as a duplicate,
    # and the event reached the ingestion once
    assert received(pool.ingestion) == expected([text])
    assert count_lines(backend, "but its lease had expired") == 1
    assert count_lines(backend, "done: duplicate: event ") == 1
    assert pool.probe.poison_records() == []
    assert backend.stop() == 0
