"""Group commit: deliveries that arrive while a queue send is in flight share the next message.

Each request submits its packed envelope and waits on a future. One sender thread per worker
process takes what is waiting, puts as much of it into one queue message as the 64 KiB cap and
`MAX_DELIVERIES_PER_MESSAGE` allow, sends it, and resolves every member's future with that
send's outcome. Nothing lingers: a lone request is sent at once, so latency at low load is
unchanged; messages fill up only with requests that arrived during the previous send.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Protocol

from common.envelope import MAX_MESSAGE_BYTES, encode_pack, encoded_size
from common.packing import PackedMessage
from common.queue import MessageQueue, QueueUnavailable

MAX_DELIVERIES_PER_MESSAGE = 32
# Requests of one process waiting for the sender; gthread threads bound it well below this.
MAX_WAITING = 256
# A request gives up on its message after this long and answers 503 (GitHub waits 10 s).
SEND_DEADLINE_S = 5.0
# What a pack's wrapper, separators and gzip framing may add to its members' own sizes.
PACK_OVERHEAD_BYTES = 256
CLOSE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Receipt:
    """The queue message a delivery travelled in, and how many deliveries it carried."""

    message_id: str
    deliveries: int


class Sender(Protocol):
    """How the view hands a packed delivery to the queue; returns once the queue accepted it."""

    def send(self, message: PackedMessage) -> Receipt:
        """Send and wait; raises QueueUnavailable when the queue did not accept it in time."""

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Send whatever is still waiting, then stop."""


class DirectSender:
    """One queue message per delivery, sent on the request's own thread (packing off)."""

    def __init__(self, queue: Callable[[], MessageQueue]) -> None:
        self._queue = queue

    def send(self, message: PackedMessage) -> Receipt:
        """Send the delivery's own message."""
        return Receipt(self._queue().send(message.text), 1)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Nothing waits here."""


@dataclass(eq=False)
class _Waiting:
    message: PackedMessage
    future: Future[Receipt]


class GroupCommitter:
    """Packs concurrent deliveries into shared queue messages from one sender thread.

    The thread starts on the first submit in each process (never in gunicorn's master before
    the fork). `queue` returns this process's queue client.
    """

    def __init__(
        self,
        queue: Callable[[], MessageQueue],
        max_per_message: int = MAX_DELIVERIES_PER_MESSAGE,
        max_waiting: int = MAX_WAITING,
        deadline_s: float = SEND_DEADLINE_S,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._queue = queue
        self.max_per_message = max_per_message
        self.max_waiting = max_waiting
        self.deadline_s = deadline_s
        self.max_message_bytes = max_message_bytes
        self._cond = threading.Condition()
        self._waiting: deque[_Waiting] = deque()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._closing = False

    @property
    def waiting(self) -> int:
        """Deliveries submitted and not yet taken by the sender thread."""
        with self._cond:
            return len(self._waiting)

    def send(self, message: PackedMessage) -> Receipt:
        """Submit and wait until the message carrying this delivery was accepted.

        A request whose deadline passes answers 503. If its delivery was still waiting it is
        withdrawn; if its message was already being sent, it may still be accepted: a copy
        GitHub would redeliver, which the backend's ledger counts once.
        """
        future = self.submit(message)
        try:
            return future.result(timeout=self.deadline_s)
        except FutureTimeout:
            if future.cancel():
                state = "withdrawn"
            elif future.done():  # its send finished between the timeout and the cancel
                return future.result()
            else:
                state = "its message may still be accepted"
            raise QueueUnavailable(
                f"queue did not accept the message within {self.deadline_s:g} s ({state})"
            ) from None

    def submit(self, message: PackedMessage) -> Future[Receipt]:
        """Queue a delivery for the sender thread; its future resolves with the send."""
        future: Future[Receipt] = Future()
        with self._cond:
            if self._closing:
                raise QueueUnavailable("the frontend is stopping")
            if len(self._waiting) >= self.max_waiting:
                waiting = len(self._waiting)
                raise QueueUnavailable(f"{waiting} deliveries already wait for the queue")
            self._start_once()
            self._waiting.append(_Waiting(message, future))
            self._cond.notify()
        return future

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Refuse new deliveries, send everything waiting, then stop the sender thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread if self._pid == os.getpid() else None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _start_once(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        # First use in this process; after a fork the parent's thread does not exist here.
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="queue-sender", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closing:
                    self._cond.wait()
                if not self._waiting:
                    return
                group = self._take_group()
            self._send_group(group)

    def _take_group(self) -> list[_Waiting]:
        """Take from the front what fits one message; a delivery too big to share goes alone."""
        group: list[_Waiting] = []
        size = PACK_OVERHEAD_BYTES
        while self._waiting and len(group) < self.max_per_message:
            item = self._waiting[0]
            if group and size + item.message.size_bytes > self.max_message_bytes:
                break
            self._waiting.popleft()
            if item.future.set_running_or_notify_cancel():  # False: its request gave up
                group.append(item)
                size += item.message.size_bytes
        return group

    def _send_group(self, group: list[_Waiting]) -> None:
        if not group:
            return
        if len(group) == 1:
            text = group[0].message.text
        else:
            text = encode_pack([item.message.document for item in group])
            if encoded_size(text) > self.max_message_bytes:
                # Members' own sizes bound a pack's in practice; should gzip disagree, halve.
                half = len(group) // 2
                self._send_group(group[:half])
                self._send_group(group[half:])
                return
        try:
            message_id = self._queue().send(text)
        except Exception as error:  # each member's request logs it; the thread lives on
            for item in group:
                item.future.set_exception(error)
            return
        receipt = Receipt(message_id, len(group))
        for item in group:
            item.future.set_result(receipt)
