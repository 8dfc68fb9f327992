"""A total deadline on every queue call of the frontend, whatever the socket timeouts allow.

The SDK's connection and read timeouts bound each socket wait, not a call: a server that
trickles one byte per second keeps a send going for minutes. Each call runs on a thread other
than its caller's; the caller waits at most the deadline and answers 503, and an overrunning call
is left to finish (or fail) on that thread, so no request and no sender thread is stuck behind it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from queue import SimpleQueue
from typing import Any, TypeVar

from common.queue import MessageQueue, QueueMessage, QueueUnavailable

# GitHub waits 10 s for an answer; FRONTEND_TIMEOUTS' own worst case is about this long.
QUEUE_DEADLINE_S = 5.0

# Calls still running past their deadline each hold a thread; past this many the queue is
# plainly not answering, and a new call fails at once instead of adding another thread.
MAX_CALLS_IN_FLIGHT = 64

# Threads kept waiting for the next call once theirs is done. A worker's callers are its
# gunicorn threads (GUNICORN_THREADS, 8 by default) and its one sender thread, each waiting on
# one call at a time, so this many serve them without starting a thread per call. Threads
# started while calls hung (at most MAX_CALLS_IN_FLIGHT) exit when their call ends.
MAX_IDLE_THREADS = 16

T = TypeVar("T")
_Call = tuple[Callable[[], Any], Future[Any]]


class CallRunner:
    """Runs calls on daemon threads, reusing idle ones and starting one when none is idle.

    Daemon threads, not a `ThreadPoolExecutor`: a hung call must not hold up the next one, nor
    the interpreter's exit (the executor joins its workers at exit). Threads start on the first
    call, so none exists in gunicorn's master before it forks.
    """

    def __init__(self, max_in_flight: int, max_idle: int) -> None:
        self.max_in_flight = max_in_flight
        self.max_idle = max_idle
        self.forget_threads()

    def forget_threads(self) -> None:
        """Start with no calls and no idle threads (a forked child has none of its parent's)."""
        self._lock = threading.Lock()
        self._calls: SimpleQueue[_Call] = SimpleQueue()
        self._in_flight = 0
        self._idle = 0

    def call(self, operation: Callable[[], T], deadline_s: float, what: str) -> T:
        """Run `operation` on another thread and wait at most `deadline_s` for its outcome.

        Raises:
            QueueUnavailable: it did not finish in time (it may still finish later), or
                `max_in_flight` calls are still running.
        """
        with self._lock:
            if self._in_flight >= self.max_in_flight:
                raise QueueUnavailable(f"queue {what}: {self.max_in_flight} calls still running")
            self._in_flight += 1
            is_thread_idle = self._idle > 0
            if is_thread_idle:
                self._idle -= 1
        if not is_thread_idle:
            self._start_thread()
        future: Future[T] = Future()
        self._calls.put((operation, future))
        try:
            return future.result(timeout=deadline_s)
        except FutureTimeout:
            raise QueueUnavailable(f"queue {what} took longer than {deadline_s:g} s") from None

    def _start_thread(self) -> None:
        try:
            threading.Thread(target=self._serve, name="queue-call", daemon=True).start()
        except BaseException:  # no thread, so no call: give its slot back
            with self._lock:
                self._in_flight -= 1
            raise

    def _serve(self) -> None:
        # The call is a temporary: an idle thread keeps nothing of its last one alive.
        is_kept = True
        while is_kept:
            is_kept = self._run(*self._calls.get())

    def _run(self, operation: Callable[[], Any], future: Future[Any]) -> bool:
        """Run one call and say whether this thread stays for another."""
        result: Any = None
        error: BaseException | None = None
        try:
            result = operation()
        except BaseException as raised:  # the caller re-raises it, whatever it was
            error = raised
        # Give the slot and this thread back before the caller sees the outcome, so that its
        # next call finds both.
        with self._lock:
            self._in_flight -= 1
            is_kept = self._idle < self.max_idle
            if is_kept:
                self._idle += 1
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
        return is_kept


_runner = CallRunner(MAX_CALLS_IN_FLIGHT, MAX_IDLE_THREADS)
# gunicorn forks its workers; a child must not hand calls to threads that stayed in the parent.
os.register_at_fork(after_in_child=_runner.forget_threads)


def call_with_deadline(operation: Callable[[], T], deadline_s: float, what: str) -> T:
    """Run `operation` on another thread and wait at most `deadline_s` for its outcome.

    Raises:
        QueueUnavailable: it did not finish in time (it may still finish later), or
            `MAX_CALLS_IN_FLIGHT` calls are still running.
    """
    return _runner.call(operation, deadline_s, what)


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
