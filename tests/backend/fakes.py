"""Test doubles for the worker: a fake clock whose sleeps advance time, and message builders."""

from __future__ import annotations

import base64
import gzip
import threading
from collections.abc import Callable
from typing import Any

from backend.shutdown import Stopper
from common.envelope import encode, encode_pack
from common.memory_queue import InMemoryQueue
from common.queue import QueueMessage
from common.reduction import reduce_payload
from tools.payloads import envelope_for


class FakeTime:
    """A monotonic clock that only moves when the worker sleeps; records every sleep.

    `on_sleep` runs after each sleep (with the seconds slept) so a test can change the world
    at a chosen point: end an outage, request a stop.
    """

    def __init__(self, stopper: Stopper) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.stopper = stopper
        self.on_sleep: Callable[[float], None] = lambda _seconds: None

    def clock(self) -> float:
        """The current fake time in seconds."""
        return self.now

    def sleep(self, seconds: float) -> bool:
        """Advance the clock; return whether a stop was requested."""
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep(seconds)
        return self.stopper.requested


class CountingQueue(InMemoryQueue):
    """The in-memory queue, counting calls per operation (from any thread)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(name="events", clock=clock)
        self.calls: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def _count(self, operation: str) -> None:
        with self._count_lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1

    def receive(self, max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        self._count("receive")
        return super().receive(max_messages, visibility_timeout_s)

    def extend(self, message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        self._count("extend")
        return super().extend(message, visibility_timeout_s)

    def release(self, message: QueueMessage) -> None:
        self._count("release")
        super().release(message)

    def stored(self) -> list[QueueMessage]:
        """Every message still in the queue, as a peek (no receive counted)."""
        return [self._view(stored) for stored in self._messages.values()]


def message_text(payload: dict[str, Any], delivery_id: str = "d-1") -> str:
    """Queue text for a GitHub payload, as the frontend would enqueue it."""
    event = "workflow_job" if "workflow_job" in payload else "workflow_run"
    envelope = envelope_for(reduce_payload(event, payload), event=event, delivery_id=delivery_id)
    return encode(envelope)


def pack_text(*texts: str) -> str:
    """One queue message carrying the envelopes of single-envelope `texts`, as a pack."""
    return encode_pack([gzip.decompress(base64.b64decode(text)) for text in texts])
