"""A request's wait for the queue ends within one deadline, even while a queue call hangs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from typing import Any

import pytest

from common.memory_queue import InMemoryQueue
from common.packing import PackedMessage
from common.queue import QueueUnavailable
from common.settings import StorageSettings
from frontend.app import create_app
from frontend.batching import GroupCommitter, Receipt
from frontend.state import close_sender
from tests.frontend.deliveries import frontend_settings, post_webhook, signed_delivery
from tests.storage_server import OK, TRICKLE, storage_server

DEADLINE_S = 1.0
# The deadline plus what a loaded test machine may add.
BOUND_S = DEADLINE_S + 1.5
WAIT_S = 10.0


@pytest.mark.parametrize("packing", [True, False], ids=["packing", "one-per-message"])
def test_a_trickling_queue_is_503_within_the_deadline(packing: bool) -> None:
    with storage_server(TRICKLE) as server:
        storage = StorageSettings(server.connection_string, None, "hooks")
        settings = replace(frontend_settings(storage), packing=packing)
        app = create_app(settings, queue_deadline_s=DEADLINE_S)
        client = app.test_client()
        body, headers = signed_delivery()

        started = time.monotonic()
        webhook = post_webhook(client, body, headers)
        webhook_s = time.monotonic() - started
        started = time.monotonic()
        ready = client.get("/ready")
        ready_s = time.monotonic() - started
    close_sender(app)

    assert (webhook.status_code, webhook.headers["Retry-After"]) == (503, "30")
    assert (ready.status_code, ready.headers["Retry-After"]) == (503, "30")
    assert (webhook_s < BOUND_S, ready_s < BOUND_S) == (True, True)


def test_a_send_stuck_on_a_trickling_queue_does_not_hold_up_later_deliveries() -> None:
    # Given the first send trickles for minutes and every later one is answered at once
    with storage_server(TRICKLE, OK) as server:
        storage = StorageSettings(server.connection_string, None, "hooks")
        app = create_app(frontend_settings(storage), queue_deadline_s=DEADLINE_S)
        client = app.test_client()
        body, headers = signed_delivery()

        # When a delivery's send overruns, then another delivery comes
        first = post_webhook(client, body, headers)
        started = time.monotonic()
        second = post_webhook(client, body, headers)
        second_s = time.monotonic() - started
    close_sender(app)

    # Then only the stuck one is 503; the next is sent beside the stuck send, not after it
    assert (first.status_code, second.status_code) == (503, 202)
    assert second_s < BOUND_S


class ScriptedQueue(InMemoryQueue):
    """The in-memory queue whose sends first run `before_send`; records the sending threads."""

    def __init__(self) -> None:
        super().__init__()
        self.before_send: Callable[[], object] = lambda: None
        self.sent_on: list[threading.Thread] = []

    def send(self, content: str) -> str:
        self.sent_on.append(threading.current_thread())
        self.before_send()
        return super().send(content)


class Hang:
    """A `before_send` that holds the first `count` sends until released."""

    def __init__(self, count: int = 1) -> None:
        self.left = count
        self.held = threading.Semaphore(0)
        self.released = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            is_held, self.left = self.left > 0, self.left - 1
        if is_held:
            self.held.release()
            assert self.released.wait(WAIT_S)

    def wait_held(self) -> None:
        assert self.held.acquire(timeout=WAIT_S), "no send was held"


@pytest.fixture
def queue() -> ScriptedQueue:
    return ScriptedQueue()


@pytest.fixture
def make_committer(queue: ScriptedQueue) -> Iterator[Callable[..., GroupCommitter]]:
    """Committers over the scripted queue, closed after the test."""
    made: list[GroupCommitter] = []

    def make(**options: Any) -> GroupCommitter:
        made.append(GroupCommitter(queue, **options))
        return made[-1]

    yield make
    for committer in made:
        committer.close()


def message(delivery_id: str = "d-0") -> PackedMessage:
    return PackedMessage(delivery_id, len(delivery_id), False, b"{}")


def test_a_delivery_arriving_during_a_hung_send_is_sent_once_that_send_stalls(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter]
) -> None:
    queue.before_send = hang = Hang()
    committer = make_committer(deadline_s=DEADLINE_S, stall_s=0.2)
    stuck = committer.submit(message("d-0"))
    hang.wait_held()

    started = time.monotonic()
    receipt = committer.send(message("d-1"))
    waited_s = time.monotonic() - started
    hang.released.set()

    assert (receipt, stuck.result(WAIT_S)) == (Receipt("m1", 1), Receipt("m2", 1))
    assert 0.2 <= waited_s < DEADLINE_S
    assert queue.sent_on[0] is not queue.sent_on[1]


def test_a_hung_send_is_503_at_the_deadline_and_the_next_runs_at_once_elsewhere(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter]
) -> None:
    queue.before_send = hang = Hang()
    committer = make_committer(deadline_s=0.2)

    started = time.monotonic()
    with pytest.raises(QueueUnavailable, match=r"^queue did not accept the message within 0\.2 s"):
        committer.send(message())
    hung_s = time.monotonic() - started
    started = time.monotonic()
    receipt = committer.send(message())
    next_s = time.monotonic() - started
    hang.released.set()

    assert 0.2 <= hung_s < 0.2 + BOUND_S - DEADLINE_S
    assert (receipt.deliveries, next_s < 0.5) == (1, True)
    assert queue.sent_on[1] is not queue.sent_on[0]


class _LateFuture(Future[Receipt]):
    """A future whose send completes just as its request's wait times out."""

    def result(self, timeout: float | None = None) -> Receipt:
        if timeout is not None and not self.done():
            self.set_running_or_notify_cancel()
            self.set_result(Receipt("m1", 3))
            raise FutureTimeout
        return super().result(timeout)


class _LateCommitter(GroupCommitter):
    def submit(self, message: PackedMessage) -> Future[Receipt]:
        return _LateFuture()


def test_a_send_completing_between_the_timeout_and_the_cancel_returns_its_receipt() -> None:
    committer = _LateCommitter(InMemoryQueue())

    receipt = committer.send(PackedMessage("text", 4, False))

    assert receipt == Receipt("m1", 3)


def test_sends_stuck_past_their_deadline_are_capped_and_the_next_fails_at_once_unsent(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter]
) -> None:
    queue.before_send = hang = Hang(count=3)
    committer = make_committer(deadline_s=0.05, stall_s=0.01, max_in_flight=3)
    try:
        for index in range(3):
            with pytest.raises(QueueUnavailable, match="within 0.05 s"):
                committer.send(message(f"d-{index}"))
        assert len(queue.sent_on) == 3

        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match=r"^3 queue calls still running$"):
            committer.send(message("d-refused"))
        refused_s = time.monotonic() - started
    finally:
        hang.released.set()

    assert refused_s < 0.5
    assert _send_once_free(committer).deliveries == 1
    assert len(queue.sent_on) == 4  # the refused one never reached the queue
    committer.close()
    assert committer.threads == 0


def _send_once_free(committer: GroupCommitter) -> Receipt:
    """Send as soon as the sends released by the test have given their slots back."""
    started = time.monotonic()
    while True:
        try:
            return committer.send(message("d-after"))
        except QueueUnavailable:
            assert time.monotonic() - started < BOUND_S, "the stuck sends kept their slots"
            time.sleep(0.001)


def test_sequential_sends_reuse_one_daemon_thread_that_is_not_the_callers(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter]
) -> None:
    committer = make_committer()

    for index in range(20):
        committer.send(message(f"d-{index}"))

    # Thread objects, not idents: a finished thread's ident is given to the next one.
    assert len(set(queue.sent_on)) == 1
    assert queue.sent_on[0] is not threading.current_thread()
    assert queue.sent_on[0].daemon is True


class _Stop(BaseException):
    """Not an Exception: a send must hand back whatever it raised."""


@pytest.mark.parametrize(
    "error",
    [ValueError("bad content"), QueueUnavailable("refused"), KeyboardInterrupt(), _Stop()],
    ids=["ValueError", "QueueUnavailable", "KeyboardInterrupt", "BaseException"],
)
def test_what_a_send_raises_reaches_the_caller_and_its_thread_serves_on(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter], error: BaseException
) -> None:
    errors = [error]

    def fail_once() -> None:
        if errors:
            raise errors.pop()

    queue.before_send = fail_once
    committer = make_committer()

    with pytest.raises(type(error)) as raised:
        committer.send(message("d-0"))

    assert raised.value is error
    assert committer.send(message("d-1")) == Receipt("m1", 1)
    assert queue.sent_on[1] is queue.sent_on[0]


def test_a_ping_is_bounded_by_the_same_deadline_and_goes_alone(
    queue: ScriptedQueue, make_committer: Callable[..., GroupCommitter]
) -> None:
    queue.before_send = hang = Hang()
    committer = make_committer(deadline_s=0.2, stall_s=60.0)
    stuck = committer.submit(message("d-0"))
    hang.wait_held()
    waiting = committer.submit(message("d-1"))

    # A ping waits behind the fresh send like a delivery, and is not packed with one
    with pytest.raises(QueueUnavailable, match=r"^queue did not answer a ping within 0\.2 s"):
        committer.ping()
    hang.released.set()

    assert (stuck.result(WAIT_S), waiting.result(WAIT_S)) == (Receipt("m1", 1), Receipt("m2", 1))
    committer.ping()
