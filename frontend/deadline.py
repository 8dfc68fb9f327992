"""A total deadline on every queue call of the frontend, whatever the socket timeouts allow.

The SDK's connection and read timeouts bound each socket wait, not a call: a server that
trickles one byte per second keeps a send going for minutes. Each call runs on a thread of its
own; the caller waits at most the deadline and answers 503, and an overrunning call is left to
finish (or fail) on its own thread, so no request and no sender thread is stuck behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from common.queue import MessageQueue, QueueMessage, QueueUnavailable

# GitHub waits 10 s for an answer; FRONTEND_TIMEOUTS' own worst case is about this long.
QUEUE_DEADLINE_S = 5.0

# Calls still running past their deadline each hold a thread; past this many the queue is
# plainly not answering, and a new call fails at once instead of adding another thread.
MAX_CALLS_IN_FLIGHT = 64
_in_flight = threading.BoundedSemaphore(MAX_CALLS_IN_FLIGHT)

T = TypeVar("T")


def call_with_deadline(operation: Callable[[], T], deadline_s: float, what: str) -> T:
    """Run `operation` on a daemon thread and wait at most `deadline_s` for its outcome.

    Raises:
        QueueUnavailable: it did not finish in time (it may still finish later).
    """
    if not _in_flight.acquire(blocking=False):
        raise QueueUnavailable(f"queue {what}: {MAX_CALLS_IN_FLIGHT} calls still running")
    future: Future[T] = Future()

    def run() -> None:
        try:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(operation())
            except BaseException as error:  # the caller re-raises it, whatever it was
                future.set_exception(error)
        finally:
            _in_flight.release()

    # A daemon thread, not a pool: a hung call must not hold up the next one, nor the exit.
    threading.Thread(target=run, name=f"queue-{what}", daemon=True).start()
    try:
        return future.result(timeout=deadline_s)
    except FutureTimeout:
        raise QueueUnavailable(f"queue {what} took longer than {deadline_s:g} s") from None


class DeadlineQueue:
    """A `MessageQueue` whose every call returns or raises within `deadline_s`."""

    def __init__(self, queue: MessageQueue, deadline_s: float = QUEUE_DEADLINE_S) -> None:
        self.name = queue.name
        self.deadline_s = deadline_s
        self._queue = queue

    def _bounded(self, operation: Callable[[], T], what: str) -> T:
        return call_with_deadline(operation, self.deadline_s, what)

    def send(self, content: str) -> str:
        """Send within the deadline."""
        return self._bounded(lambda: self._queue.send(content), "send")

    def receive(self, max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        """Receive within the deadline."""
        return self._bounded(
            lambda: self._queue.receive(max_messages, visibility_timeout_s), "receive"
        )

    def delete(self, message: QueueMessage) -> None:
        """Delete within the deadline."""
        self._bounded(lambda: self._queue.delete(message), "delete")

    def extend(self, message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        """Extend within the deadline."""
        return self._bounded(lambda: self._queue.extend(message, visibility_timeout_s), "extend")

    def release(self, message: QueueMessage) -> None:
        """Release within the deadline."""
        self._bounded(lambda: self._queue.release(message), "release")

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Dead-letter within the deadline."""
        self._bounded(lambda: self._queue.dead_letter(message, reason), "dead_letter")

    def send_poison(self, record: str) -> None:
        """Send a poison record within the deadline."""
        self._bounded(lambda: self._queue.send_poison(record), "send_poison")

    def ping(self) -> None:
        """Ping within the deadline."""
        self._bounded(self._queue.ping, "ping")
