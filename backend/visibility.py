"""Keeping a held batch invisible: its messages' visibility is extended while it waits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from backend.parcel import Parcel
from common.queue import MessageGone, QueueConsumer, QueueError

log = logging.getLogger(__name__)

# After a failed visibility extension, try again this soon (at most a quarter of the interval).
EXTEND_RETRY_S = 5.0


class VisibilityKeeper:
    """Extends the visibility of a batch's unsettled messages once half the timeout has passed.

    `sleep(seconds)` returns True when a stop was requested meanwhile (`Stopper.wait`);
    `is_stopping()` says whether one was.
    """

    def __init__(
        self,
        queue: QueueConsumer,
        visibility_timeout_s: int,
        clock: Callable[[], float],
        sleep: Callable[[float], bool],
        is_stopping: Callable[[], bool],
    ) -> None:
        self.queue = queue
        self.visibility_timeout_s = visibility_timeout_s
        self._clock = clock
        self._sleep = sleep
        self._is_stopping = is_stopping
        self._extended_at = clock()

    @property
    def extend_after_s(self) -> float:
        """Extend a held message's visibility once half of it has passed."""
        return self.visibility_timeout_s / 2.0

    def received(self) -> None:
        """A batch was received just now: its visibility timeout runs from here."""
        self._extended_at = self._clock()

    def sleep(self, seconds: float, parcels: Sequence[Parcel]) -> bool:
        """Sleep `seconds`, waking to extend the messages' visibility in time; True if stopping."""
        deadline = self._clock() + seconds
        while True:
            remaining = deadline - self._clock()
            if remaining <= 0:
                return self._is_stopping()
            next_extension = self._extended_at + self.extend_after_s - self._clock()
            if self._sleep(max(min(remaining, next_extension), 0.0)):
                return True
            self.keep_alive(parcels)

    def keep_alive(self, parcels: Sequence[Parcel]) -> None:
        """Extend the visibility of unsettled messages once half the timeout has passed.

        The time is recorded only once every extension succeeded; after a failure the next
        try comes EXTEND_RETRY_S later, not another half timeout (when the message is visible).
        """
        if self._clock() - self._extended_at < self.extend_after_s:
            return
        failed = False
        for parcel in parcels:
            if parcel.settled:
                continue
            message = parcel.message
            try:
                parcel.message = self.queue.extend(message, self.visibility_timeout_s)
            except MessageGone:
                log.warning("message %s: lease lost before it could be extended", message.id)
            except QueueError as error:
                failed = True
                log.warning("message %s: could not extend visibility: %s", message.id, error)
        if not failed:
            self._extended_at = self._clock()
        else:
            retry_s = min(EXTEND_RETRY_S, self.extend_after_s / 4.0)
            self._extended_at = self._clock() - self.extend_after_s + retry_s
