"""Every queue call of the frontend ends within its deadline, even against a trickling server."""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

import pytest

from common.memory_queue import InMemoryQueue
from common.packing import PackedMessage
from common.queue import QueueUnavailable
from common.settings import StorageSettings
from frontend import deadline
from frontend.app import create_app
from frontend.batching import GroupCommitter, Receipt
from tests.frontend.deliveries import frontend_settings, post_webhook, signed_delivery
from tests.storage_server import OK, TRICKLE, storage_server

DEADLINE_S = 1.0
# The deadline plus what a loaded test machine may add.
BOUND_S = DEADLINE_S + 1.5


@pytest.mark.parametrize("packing", [True, False], ids=["packing", "direct"])
def test_a_trickling_queue_is_503_within_the_deadline(packing: bool) -> None:
    with storage_server(TRICKLE) as server:
        storage = StorageSettings(server.connection_string, None, "hooks")
        settings = replace(frontend_settings(storage), packing=packing)
        client = create_app(settings, queue_deadline_s=DEADLINE_S).test_client()
        body, headers = signed_delivery()

        started = time.monotonic()
        webhook = post_webhook(client, body, headers)
        webhook_s = time.monotonic() - started
        started = time.monotonic()
        ready = client.get("/ready")
        ready_s = time.monotonic() - started

    assert (webhook.status_code, webhook.headers["Retry-After"]) == (503, "30")
    assert (ready.status_code, ready.headers["Retry-After"]) == (503, "30")
    assert (webhook_s < BOUND_S, ready_s < BOUND_S) == (True, True)


def test_a_send_stuck_on_a_trickling_queue_does_not_hold_up_later_deliveries() -> None:
    # Given the first send trickles for minutes and every later one is answered at once
    with storage_server(TRICKLE, OK) as server:
        storage = StorageSettings(server.connection_string, None, "hooks")
        client = create_app(frontend_settings(storage), queue_deadline_s=DEADLINE_S).test_client()
        body, headers = signed_delivery()

        # When a delivery's send overruns, then another delivery comes
        first = post_webhook(client, body, headers)
        started = time.monotonic()
        second = post_webhook(client, body, headers)
        second_s = time.monotonic() - started

    # Then only the stuck one is 503; the next is sent by a sender no longer waiting on it
    assert (first.status_code, second.status_code) == (503, 202)
    assert second_s < BOUND_S


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
    committer = _LateCommitter(lambda: InMemoryQueue())

    receipt = committer.send(PackedMessage("text", 4, False))

    assert receipt == Receipt("m1", 3)


def test_calls_stuck_past_their_deadline_are_capped_and_new_ones_fail_at_once() -> None:
    release = threading.Event()

    def hang() -> str:
        release.wait(30)
        return "late"

    try:
        # Other tests' calls may still be running too, so fill whatever room is left.
        timed_out = 0
        with pytest.raises(QueueUnavailable, match="calls still running"):
            for _ in range(deadline.MAX_CALLS_IN_FLIGHT + 1):
                try:
                    deadline.call_with_deadline(hang, 0.001, "send")
                except QueueUnavailable as error:
                    assert "took longer" in str(error) or "still running" in str(error)
                    if "still running" in str(error):
                        raise
                    timed_out += 1
        assert 0 < timed_out <= deadline.MAX_CALLS_IN_FLIGHT
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match="calls still running"):
            deadline.call_with_deadline(lambda: "fast", 5.0, "send")
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
    assert _call_once_free(deadline.call_with_deadline) == "fast"


def _call_once_free(call: Callable[[Callable[[], str], float, str], str]) -> str:
    """Call as soon as the calls released by the test have given their slots back."""
    started = time.monotonic()
    while True:
        try:
            return call(lambda: "fast", 5.0, "send")
        except QueueUnavailable:
            assert time.monotonic() - started < BOUND_S, "the stuck calls kept their slots"
            time.sleep(0.001)


def test_sequential_calls_reuse_one_thread_that_is_not_the_callers() -> None:
    runner = deadline.CallRunner(max_in_flight=4, max_idle=2)

    # Thread objects, not idents: a finished thread's ident is given to the next one.
    threads = [runner.call(threading.current_thread, 0.5, "send") for _ in range(20)]

    assert len(set(threads)) == 1
    assert threading.current_thread() not in threads


def test_a_hung_call_times_out_and_the_next_runs_at_once_on_another_thread() -> None:
    runner = deadline.CallRunner(max_in_flight=4, max_idle=2)
    runner.call(lambda: None, 0.5, "send")  # one idle thread, which the hung call takes
    release = threading.Event()
    hung_on: list[threading.Thread] = []

    def hang() -> None:
        hung_on.append(threading.current_thread())
        release.wait(30)

    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match=r"^queue send took longer than 0\.2 s$"):
            runner.call(hang, 0.2, "send")
        hung_s = time.monotonic() - started
        started = time.monotonic()
        next_on = runner.call(threading.current_thread, 0.5, "send")
        next_s = time.monotonic() - started
    finally:
        release.set()

    assert 0.2 <= hung_s < 0.2 + BOUND_S - DEADLINE_S
    assert next_s < 0.5
    assert next_on not in hung_on


def test_the_call_past_the_cap_fails_at_once_and_never_runs() -> None:
    runner = deadline.CallRunner(max_in_flight=3, max_idle=3)
    release = threading.Event()
    ran: list[str] = []
    try:
        for _ in range(3):
            with pytest.raises(QueueUnavailable, match="took longer"):
                runner.call(lambda: release.wait(30), 0.01, "send")

        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match=r"^queue send: 3 calls still running$"):
            runner.call(lambda: ran.append("late"), 5.0, "send")
        refused_s = time.monotonic() - started
    finally:
        release.set()

    assert refused_s < 0.5
    assert _call_once_free(runner.call) == "fast"
    assert ran == []


class _Stop(BaseException):
    """Not an Exception: a call must hand back whatever it raised."""


@pytest.mark.parametrize(
    "error",
    [ValueError("bad content"), QueueUnavailable("refused"), KeyboardInterrupt(), _Stop()],
    ids=["ValueError", "QueueUnavailable", "KeyboardInterrupt", "BaseException"],
)
def test_what_a_call_raises_reaches_the_caller_and_its_thread_serves_on(
    error: BaseException,
) -> None:
    runner = deadline.CallRunner(max_in_flight=4, max_idle=2)
    raised_on: list[threading.Thread] = []

    def fail() -> None:
        raised_on.append(threading.current_thread())
        raise error

    with pytest.raises(type(error)) as raised:
        runner.call(fail, 0.5, "send")

    assert raised.value is error
    assert runner.call(threading.current_thread, 0.5, "send") is raised_on[0]


def test_calls_run_on_daemon_threads() -> None:
    runner = deadline.CallRunner(max_in_flight=4, max_idle=2)

    def is_daemon() -> bool:
        return threading.current_thread().daemon

    assert (runner.call(is_daemon, 0.5, "send"), runner.call(is_daemon, 0.5, "send")) == (
        True,
        True,
    )
    assert deadline.call_with_deadline(is_daemon, 0.5, "send") is True


def test_a_forked_child_starts_its_own_threads() -> None:
    # Given the parent has an idle thread, which a forked child does not get
    assert deadline.call_with_deadline(os.getpid, 0.5, "send") == os.getpid()

    # When the child calls
    with warnings.catch_warnings():
        # Python 3.12 warns that forking a threaded process may deadlock the child; this child
        # takes no lock a parent thread could hold.
        warnings.simplefilter("ignore", DeprecationWarning)
        child = os.fork()
    if child == 0:
        try:
            ran_in = deadline.call_with_deadline(os.getpid, 0.5, "send")
            os._exit(0 if ran_in == os.getpid() else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)

    # Then its call ran on a thread of its own instead of waiting for the parent's
    assert os.waitstatus_to_exitcode(status) == 0
