"""An in-memory queue with Azure's semantics (visibility, pop receipts, dequeue counts).

Like `common.azure_queue.AzureQueue` it plays both roles: `QueueProducer` and `QueueConsumer`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from common.queue import MessageGone, QueueMessage, QueueUnavailable, poison_record


@dataclass
class _Stored:
    id: str
    content: str
    inserted_on: datetime
    visible_at: float
    dequeue_count: int = 0
    pop_receipt: str = ""


class InMemoryQueue:
    """A fake of the Azure queue for unit tests; `dead_letters` is its poison queue.

    Set `unavailable = True` to make every call raise QueueUnavailable, as an outage would.
    """

    def __init__(self, name: str = "test-queue", clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.unavailable = False
        self.dead_letters: list[str] = []
        self.sent_count = 0
        self._clock = clock
        self._messages: dict[str, _Stored] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.unavailable:
            raise QueueUnavailable("in-memory queue marked unavailable")

    def send(self, content: str) -> str:
        self._check()
        with self._lock:
            message_id = f"m{next(self._ids)}"
            now = self._clock()
            self._messages[message_id] = _Stored(message_id, content, datetime.now(UTC), now)
            self.sent_count += 1
            return message_id

    def receive(self, max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        self._check()
        with self._lock:
            now = self._clock()
            received: list[QueueMessage] = []
            for stored in self._messages.values():
                if len(received) >= max_messages:
                    break
                if stored.visible_at > now:
                    continue
                stored.dequeue_count += 1
                stored.visible_at = now + visibility_timeout_s
                stored.pop_receipt = f"r{next(self._ids)}"
                received.append(self._view(stored))
            return received

    def _owned(self, message: QueueMessage) -> _Stored:
        stored = self._messages.get(message.id)
        if stored is None or stored.pop_receipt != message.pop_receipt:
            raise MessageGone(f"message {message.id} is gone or its pop receipt is stale")
        return stored

    def delete(self, message: QueueMessage) -> None:
        self._check()
        with self._lock:
            self._owned(message)
            del self._messages[message.id]

    def extend(self, message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        self._check()
        with self._lock:
            stored = self._owned(message)
            stored.visible_at = self._clock() + visibility_timeout_s
            stored.pop_receipt = f"r{next(self._ids)}"
            return replace(message, pop_receipt=stored.pop_receipt)

    def release(self, message: QueueMessage) -> None:
        self._check()
        with self._lock:
            stored = self._owned(message)
            stored.visible_at = self._clock()
            stored.pop_receipt = f"r{next(self._ids)}"

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        self._check()
        with self._lock:
            self._owned(message)
            self.dead_letters.append(poison_record(message, reason, self.name, datetime.now(UTC)))
            del self._messages[message.id]

    def send_poison(self, record: str) -> None:
        self._check()
        with self._lock:
            self.dead_letters.append(record)

    def ping(self) -> None:
        self._check()

    def __len__(self) -> int:
        """Messages still in the queue, visible or not."""
        return len(self._messages)

    def _view(self, stored: _Stored) -> QueueMessage:
        return QueueMessage(
            stored.id, stored.pop_receipt, stored.content, stored.dequeue_count, stored.inserted_on
        )
