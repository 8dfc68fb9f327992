"""What the app holds in `app.extensions`: its settings and a queue built lazily per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from common.queue import MessageQueue, QueueUnavailable
from frontend.batching import Sender
from frontend.settings import FrontendSettings

EXTENSION = "github_telemetry"


class LazyQueue:
    """Builds the queue client on first use in each process, so none exists before a fork.

    gunicorn forks workers from its master; an HTTP session made before the fork would be
    shared by every worker, so the client is made by whichever process first needs it.
    """

    def __init__(self, factory: Callable[[], MessageQueue]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._queue: MessageQueue | None = None
        self._pid = 0

    def get(self) -> MessageQueue:
        """The queue client of this process, built on the first call.

        Raises:
            QueueUnavailable: the client could not be built (settings checks make it rare).
        """
        with self._lock:
            if self._queue is None or self._pid != os.getpid():
                try:
                    self._queue = self._factory()
                except Exception as error:
                    # Its message may quote the connection string, which holds a key.
                    name = type(error).__name__
                    raise QueueUnavailable(f"the queue client cannot be built ({name})") from None
                self._pid = os.getpid()
            return self._queue


@dataclass(frozen=True)
class FrontendState:
    """The settings, queue and sender (group committer or direct) of one app."""

    settings: FrontendSettings
    queue: LazyQueue
    sender: Sender


def current_state() -> FrontendState:
    """The state of the app handling the current request."""
    state: FrontendState = current_app.extensions[EXTENSION]
    return state


def close_sender(app: Any) -> None:
    """Send what still waits for a queue message; gunicorn's `worker_exit` calls it."""
    extensions = getattr(app, "extensions", None)
    state: FrontendState | None = extensions.get(EXTENSION) if extensions else None
    if state is not None:
        state.sender.close()
