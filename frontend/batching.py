"""The frontend's one path to the queue: group commit on a few sender threads, one deadline.

Each request submits its packed envelope (or a ping) and waits on a future for at most the
deadline, counted from that moment; then it answers 503. A sender thread takes what is waiting,
puts as much of it into one queue message as the 64 KiB cap and `MAX_DELIVERIES_PER_MESSAGE`
allow, sends it, and resolves every member's future with that send's outcome. Nothing lingers:
a lone request is sent at once; messages fill only with requests that arrived during a send.

The SDK's socket timeouts bound each socket wait, not a call: a server trickling its answer
keeps a send going for minutes. So a send in flight holds the next message back (to let it
fill) only while it is younger than `stall_s`; a stalled send is left to finish on its own
thread and the next message goes out on another. Threads are reused, and at most
`max_in_flight` sends run at once: past that the queue is plainly not answering, and a new
request fails at once instead of adding a thread.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from common.envelope import MAX_ENVELOPE_BYTES, encode_pack, encoded_size
from common.packing import PackedMessage
from common.queue import QueueProducer, QueueUnavailable

log = logging.getLogger(__name__)

MAX_DELIVERIES_PER_MESSAGE = 32
# Requests of one process waiting for a sender; gthread threads bound it well below this.
MAX_WAITING = 256
# The longest a request waits for the queue, from its submit to its answer; past it, 503. The
# app sets it to its answer deadline (FrontendSettings.answer_deadline_s), and a delivery waits
# only what is left of that since its arrival. GitHub gives up after 10 s.
QUEUE_DEADLINE_S = 5.0
# A send this old no longer holds the next message back: an Azure put takes milliseconds.
STALLED_SEND_S = 1.0
# Sends running at once in one process, stalled ones included; each holds a thread.
MAX_SENDS_IN_FLIGHT = 64
# Sender threads kept waiting for work once their send is done. Packing keeps one or two
# busy; with packing off a worker's gthread threads (GUNICORN_THREADS, 8 by default) each
# wait on one send at a time, so this many serve them without a thread per send.
MAX_IDLE_SENDERS = 16
# What a pack's wrapper, separators and gzip framing may add to its members' own sizes.
PACK_OVERHEAD_BYTES = 256
CLOSE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Receipt:
    """The queue message a delivery travelled in, and how many deliveries it carried."""

    message_id: str
    deliveries: int


# What a ping's request gets: no message, no deliveries.
PONG = Receipt("", 0)


@dataclass(eq=False)
class _Request:
    message: PackedMessage | None  # None: a ping
    future: Future[Receipt]


# Requests and what they get: the receipt of the message that carried them, or its error.
_Outcome = tuple[list[_Request], Receipt | BaseException]


class _PackTooLarge(Exception):
    """The members' own sizes promised a pack that fits; gzip disagreed."""


class GroupCommitter:
    """Sends concurrent deliveries in shared queue messages, each request bounded by a deadline.

    `max_per_message=1` sends one message per delivery (packing off) on the same path; then a
    send in flight holds nothing back. Threads start on the first submit, never at creation.
    """

    def __init__(
        self,
        queue: QueueProducer,
        max_per_message: int = MAX_DELIVERIES_PER_MESSAGE,
        max_waiting: int = MAX_WAITING,
        deadline_s: float = QUEUE_DEADLINE_S,
        stall_s: float | None = None,
        max_in_flight: int = MAX_SENDS_IN_FLIGHT,
        max_idle: int = MAX_IDLE_SENDERS,
        max_message_bytes: int = MAX_ENVELOPE_BYTES,
    ) -> None:
        self._queue = queue
        self.max_per_message = max_per_message
        self.max_waiting = max_waiting
        self.deadline_s = deadline_s
        # A stalled send must leave later requests most of their deadline.
        self.stall_s = min(STALLED_SEND_S, deadline_s / 4) if stall_s is None else stall_s
        self.max_in_flight = max_in_flight
        self.max_idle = max_idle
        self.max_message_bytes = max_message_bytes
        self._fresh_sends_allowed = 1 if max_per_message > 1 else max_in_flight
        self._cond = threading.Condition()
        self._waiting: deque[_Request] = deque()
        self._sends: dict[int, float] = {}  # sending thread's ident -> when its send started
        self._idle = 0  # sender threads not sending
        self._closing = False
        self._exit_registered = False

    @property
    def waiting(self) -> int:
        """Requests submitted and not yet taken by a sender thread."""
        with self._cond:
            return len(self._waiting)

    @property
    def threads(self) -> int:
        """Sender threads alive: sending, or waiting for work."""
        with self._cond:
            return len(self._sends) + self._idle

    def send(self, message: PackedMessage, timeout_s: float | None = None) -> Receipt:
        """Submit and wait until the message carrying this delivery was accepted.

        A request waits at most the deadline, or `timeout_s` (what is left of its answer budget)
        if shorter; then it answers 503. If its delivery was still waiting it is withdrawn; if
        its message was already being sent, it may still be accepted: a copy GitHub would
        redeliver, which the backend's ledger counts once.

        Raises:
            QueueUnavailable: the queue refused the message or did not accept it in time.
        """
        wait_s = self.deadline_s if timeout_s is None else min(self.deadline_s, timeout_s)
        if wait_s <= 0:
            raise QueueUnavailable("the request waited past its answer deadline: shed")
        return self._wait(self.submit(message), "accept the message", wait_s)

    def ping(self) -> None:
        """Check that the queue answers, within the same deadline as a send.

        Raises:
            QueueUnavailable: the queue did not answer in time, or answered with an error.
        """
        self._wait(self._submit(None), "answer a ping")

    def submit(self, message: PackedMessage) -> Future[Receipt]:
        """Queue a delivery for a sender thread; its future resolves with the send."""
        return self._submit(message)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Refuse new requests, send everything waiting, and end the sender threads.

        A send stalled past the deadline, which no request waits for, is left to its thread.
        """
        end = time.monotonic() + timeout_s
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while True:
                now = time.monotonic()
                # A send older than the deadline has no request left waiting for it.
                awaited = [
                    started + self.deadline_s - now
                    for started in self._sends.values()
                    if started + self.deadline_s > now
                ]
                if (not self._waiting and not awaited and not self._idle) or now >= end:
                    return
                self._cond.wait(min([end - now, *awaited]))

    def _submit(self, message: PackedMessage | None) -> Future[Receipt]:
        future: Future[Receipt] = Future()
        with self._cond:
            if self._closing:
                raise QueueUnavailable("the frontend is stopping")
            if len(self._waiting) >= self.max_waiting:
                waiting = len(self._waiting)
                raise QueueUnavailable(f"{waiting} deliveries already wait for the queue")
            if len(self._sends) >= self.max_in_flight:
                raise QueueUnavailable(f"{len(self._sends)} queue calls still running")
            self._waiting.append(_Request(message, future))
            self._keep_a_sender_free()
            if self._held_back_s() <= 0:  # else no sender may take it yet: let them sleep
                self._cond.notify()
        return future

    def _wait(self, future: Future[Receipt], what: str, wait_s: float | None = None) -> Receipt:
        wait_s = self.deadline_s if wait_s is None else wait_s
        try:
            return future.result(timeout=wait_s)
        except FutureTimeout:
            if future.cancel():
                state = "withdrawn"
            elif future.done():  # its send finished between the timeout and the cancel
                return future.result()
            else:
                state = "still in flight"
            raise QueueUnavailable(
                f"queue did not {what} within {wait_s:.3g} s ({state})"
            ) from None

    def _keep_a_sender_free(self) -> None:
        """Start a sender thread if requests wait and every thread is sending (lock held)."""
        if not self._waiting or self._idle or len(self._sends) >= self.max_in_flight:
            return
        thread = threading.Thread(target=self._serve, name="queue-sender", daemon=True)
        try:
            thread.start()
        except RuntimeError as error:  # out of threads: the threads there are serve on
            log.warning("no new queue sender thread: %s", error)
            return
        self._idle += 1
        if not self._exit_registered:
            # Outside gunicorn (whose worker_exit closes it), send what waits at exit.
            atexit.register(self.close)
            self._exit_registered = True

    def _serve(self) -> None:
        group = self._next_group()
        while group is not None:
            outcomes = self._send_group(group)
            # Give this thread back before any caller sees its outcome, so that the caller's
            # next request finds it idle instead of starting another.
            self._finish_send()
            for requests, outcome in outcomes:
                for request in requests:
                    if isinstance(outcome, Receipt):
                        request.future.set_result(outcome)
                    else:
                        request.future.set_exception(outcome)
            group = self._next_group()

    def _finish_send(self) -> None:
        with self._cond:
            del self._sends[threading.get_ident()]
            self._idle += 1
            if self._closing:
                self._cond.notify_all()

    def _next_group(self) -> list[_Request] | None:
        """Wait for a group this thread may send; None when the thread should end."""
        with self._cond:
            while True:
                if not self._waiting:
                    if self._closing or self._idle > self.max_idle:
                        self._idle -= 1
                        self._cond.notify_all()  # close() waits for idle threads to end
                        return None
                    self._cond.wait()
                    continue
                held_s = self._held_back_s()
                if held_s > 0:
                    self._cond.wait(held_s)
                    continue
                group = self._take_group()
                if group:
                    self._idle -= 1
                    self._sends[threading.get_ident()] = time.monotonic()
                    self._keep_a_sender_free()
                    return group

    def _held_back_s(self) -> float:
        """How long a fresh send in flight still holds the next message back; 0: send now."""
        now = time.monotonic()
        fresh = [
            started + self.stall_s - now
            for started in self._sends.values()
            if started + self.stall_s > now
        ]
        return min(fresh) if len(fresh) >= self._fresh_sends_allowed else 0.0

    def _take_group(self) -> list[_Request]:
        """Take from the front what fits one message; a ping or an oversized delivery goes alone."""
        group: list[_Request] = []
        size = PACK_OVERHEAD_BYTES
        while self._waiting and len(group) < self.max_per_message:
            message = self._waiting[0].message
            if group and (message is None or size + message.size_bytes > self.max_message_bytes):
                break
            request = self._waiting.popleft()
            if request.future.set_running_or_notify_cancel():  # False: its request gave up
                group.append(request)
                if message is None:
                    break
                size += message.size_bytes
        return group

    def _send_group(self, group: list[_Request]) -> list[_Outcome]:
        """Send one group; what each part of it gets. Nothing it raises ends the thread."""
        try:
            return [(group, self._call(group))]
        except _PackTooLarge:
            half = len(group) // 2
            return self._send_group(group[:half]) + self._send_group(group[half:])
        except BaseException as error:  # each member's request reports it; the thread serves on
            return [(group, error)]

    def _call(self, group: list[_Request]) -> Receipt:
        """The one queue call of a group: its ping, or its message as one envelope or a pack."""
        messages = [request.message for request in group if request.message is not None]
        if not messages:
            self._queue.ping()
            return PONG
        if len(messages) == 1:
            text = messages[0].text
        else:
            text = encode_pack([message.document for message in messages])
            if encoded_size(text) > self.max_message_bytes:
                # Members' own sizes bound a pack's in practice; should gzip disagree, halve.
                raise _PackTooLarge
        return Receipt(self._queue.send(text), len(group))
