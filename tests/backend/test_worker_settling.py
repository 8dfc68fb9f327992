"""A batch's messages are settled side by side, overlapping the next batch's receive."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from backend.outcome import Outcome
from backend.parcel import Job
from backend.shutdown import StopNow
from backend.worker import SETTLE_THREADS
from common.queue import QueueMessage
from tests.backend.conftest import WorkerFactory
from tests.backend.fakes import CountingQueue, message_text
from tools.payloads import workflow_run_payload

# Long enough for any thread to arrive; only a test that fails waits this out.
BARRIER_TIMEOUT_S = 5.0


def run_text(index: int) -> str:
    """A mapped workflow_run message of its own run, so every message is its own event."""
    return message_text(workflow_run_payload("completed", id=5000 + index), f"d-{index}")


def send_runs(queue: CountingQueue, count: int) -> list[str]:
    return [queue.send(run_text(index)) for index in range(count)]


def wrap_delete(queue: CountingQueue, before: Callable[[QueueMessage], None]) -> None:
    """Run `before(message)` ahead of each delete of `queue`, on the settling thread."""
    real_delete = queue.delete

    def delete(message: QueueMessage) -> None:
        before(message)
        real_delete(message)

    queue.delete = delete  # type: ignore[method-assign]


@pytest.fixture
def fine_switching() -> Iterator[None]:
    """Switch threads as often as possible, so unguarded shared state would show its races."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_the_messages_of_a_batch_are_deleted_side_by_side(
    queue: CountingQueue, make_worker: WorkerFactory
) -> None:
    # Given deletes that return only once SETTLE_THREADS of them are in flight at once
    send_runs(queue, SETTLE_THREADS)
    barrier = threading.Barrier(SETTLE_THREADS, timeout=BARRIER_TIMEOUT_S)
    passed: list[str] = []

    def meet(message: QueueMessage) -> None:
        barrier.wait()  # one after another, the first would wait out the timeout and fail
        passed.append(message.id)

    wrap_delete(queue, meet)

    # When one batch is processed
    worker = make_worker()
    worker.work(burst=True)

    # Then every delete met the others and went through
    assert (len(passed), len(queue), barrier.broken) == (SETTLE_THREADS, 0, False)
    assert worker.counts == {Outcome.DONE: SETTLE_THREADS}


def test_the_next_batch_is_received_while_the_last_one_is_being_deleted(
    queue: CountingQueue, make_worker: WorkerFactory
) -> None:
    # Given two batches, and deletes of the first that wait until the second is received
    batch_size = 2 * SETTLE_THREADS
    ids = send_runs(queue, 2 * batch_size)
    first_ids = set(ids[:batch_size])
    received_again = threading.Event()
    deleted: list[str] = []
    waited_out: list[str] = []
    receives = 0
    real_receive = queue.receive

    def receive(max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        nonlocal receives
        receives += 1
        if receives == 2:
            received_again.set()
        return real_receive(max_messages, visibility_timeout_s)

    def after_next_receive(message: QueueMessage) -> None:
        if message.id in first_ids and not received_again.wait(BARRIER_TIMEOUT_S):
            waited_out.append(message.id)  # deleting one batch at a time would end up here
        deleted.append(message.id)

    queue.receive = receive  # type: ignore[method-assign]
    wrap_delete(queue, after_next_receive)

    # When the worker drains them
    worker = make_worker(max_messages_per_batch=batch_size)
    worker.work(burst=True)

    # Then the second batch was received while the first was being deleted, the second's
    # deletes began only once the first's were all done, and the worker returned only once
    # every message was settled
    assert (waited_out, receives) == ([], 3)
    assert set(deleted[:batch_size]) == first_ids
    assert sorted(deleted) == sorted(ids)
    assert (len(queue), worker.counts) == (0, {Outcome.DONE: 2 * batch_size})


def test_a_failing_delete_leaves_its_message_and_the_others_and_the_loop_go_on(
    queue: CountingQueue, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ids = send_runs(queue, 3 * SETTLE_THREADS)
    broken_id = ids[1]

    def bug(message: QueueMessage) -> None:
        if message.id == broken_id:
            raise RuntimeError("a bug")

    wrap_delete(queue, bug)

    with caplog.at_level(logging.ERROR, logger="backend"):
        worker = make_worker(max_messages_per_batch=SETTLE_THREADS)
        worker.work(burst=True)

    assert [message.id for message in queue.stored()] == [broken_id]
    assert queue.calls["receive"] == 4  # three batches, then an empty receive
    assert [r.getMessage() for r in caplog.records] == [
        f"message {broken_id}: settling (delete) failed unexpectedly; it reappears when its "
        "visibility ends"
    ]


def test_a_bug_in_settle_itself_is_logged_and_the_rest_of_the_batch_settled(
    queue: CountingQueue, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    ids = send_runs(queue, SETTLE_THREADS)
    broken_id = ids[2]
    worker = make_worker()
    real_log_outcome = worker.settler._log_outcome

    def log_outcome(job: Job) -> None:
        if job.message.id == broken_id:
            raise KeyError("a bug")
        real_log_outcome(job)

    worker.settler._log_outcome = log_outcome  # type: ignore[method-assign]

    with caplog.at_level(logging.ERROR, logger="backend"):
        worker.work(burst=True)

    assert len(queue) == 0  # its delete came before the bug
    [record] = caplog.records
    assert record.getMessage() == f"message {broken_id}: settling failed unexpectedly"
    assert record.exc_info is not None and record.exc_info[0] is KeyError


@pytest.mark.usefixtures("fine_switching")
def test_the_counts_stay_exact_with_settles_side_by_side(
    queue: CountingQueue, make_worker: WorkerFactory
) -> None:
    batches = 30
    for index in range(batches * 32):
        queue.send("not an envelope" if index % 4 == 0 else run_text(index))

    worker = make_worker(max_messages_per_batch=32)
    worker.work(burst=True)

    poisoned = batches * 32 // 4
    assert worker.counts == {Outcome.DONE: batches * 32 - poisoned, Outcome.POISON: poisoned}
    assert (len(queue), len(queue.dead_letters)) == (0, poisoned)


def test_a_forced_stop_drops_the_settles_not_started_and_waits_only_for_those_running(
    queue: CountingQueue, make_worker: WorkerFactory
) -> None:
    # Given a batch of twice as many messages as settle threads, whose deletes are slow
    send_runs(queue, 2 * SETTLE_THREADS)
    deleted: list[str] = []
    real_receive = queue.receive
    receives = 0

    def slow(message: QueueMessage) -> None:
        threading.Event().wait(0.2)
        deleted.append(message.id)

    def receive(max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        nonlocal receives
        receives += 1
        if receives == 2:
            raise StopNow  # a second signal, while the first batch is still being deleted
        return real_receive(max_messages, visibility_timeout_s)

    queue.receive = receive  # type: ignore[method-assign]
    wrap_delete(queue, slow)

    # When the stop comes with half the deletes running and half waiting for a thread
    with pytest.raises(StopNow):
        make_worker(max_messages_per_batch=2 * SETTLE_THREADS).work()

    # Then only the running half went through; the rest stay in the queue, to reappear
    assert len(deleted) == SETTLE_THREADS
    assert len(queue) == SETTLE_THREADS
