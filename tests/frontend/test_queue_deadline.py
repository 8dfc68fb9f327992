"""Every queue call of the frontend ends within its deadline, even against a trickling server."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace

import pytest

from common.memory_queue import InMemoryQueue
from common.queue import QueueUnavailable
from common.settings import StorageSettings
from frontend import deadline
from frontend.app import create_app
from frontend.batching import GroupCommitter, Receipt
from frontend.packing import PackedMessage
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
        for thread in [t for t in threading.enumerate() if t.name == "queue-send"]:
            thread.join(5)
    assert deadline.call_with_deadline(lambda: "fast", 5.0, "send") == "fast"
