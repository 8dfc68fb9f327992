"""Two-stage shutdown: the first signal asks to stop after the batch in hand, the second now."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from types import FrameType

log = logging.getLogger(__name__)


class StopNow(BaseException):
    """Unwinds the worker at once (second signal); a BaseException so `except Exception` misses it.

    Whatever is in flight is left in the queue and reappears after its visibility timeout.
    """


class Stopper:
    """Holds the stop request; `wait()` is the only way the worker sleeps, so a stop wakes it.

    With `escalate=False` a repeated signal is not a "stop now": a pool worker may get the same
    SIGTERM from its supervisor and from a process-group or cgroup kill, and its supervisor
    escalates with SIGKILL itself.
    """

    def __init__(self, escalate: bool = True) -> None:
        self._event = threading.Event()
        self._escalate = escalate

    @property
    def requested(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    def request(self) -> None:
        """Ask for a graceful stop."""
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop request; return whether one was made."""
        return self._event.wait(max(seconds, 0.0))

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: the first signal requests a stop, any later one raises StopNow."""
        name = signal.Signals(signum).name
        if self.requested and self._escalate:
            log.warning("%s received again: stopping now", name)
            raise StopNow(name)
        if not self.requested:
            log.info("%s received: finishing the batch in hand, then stopping", name)
        self.request()

    def install(
        self,
        signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
        ignored: Iterable[signal.Signals] = (),
    ) -> None:
        """Route `signals` to this stopper and ignore `ignored` (main thread only)."""
        for signum in signals:
            signal.signal(signum, self.on_signal)
        for signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
