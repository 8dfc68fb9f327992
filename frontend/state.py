"""What the app holds in `app.extensions`: its settings and its one path to the queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from frontend.batching import GroupCommitter
from frontend.settings import FrontendSettings

EXTENSION = "github_telemetry"


@dataclass(frozen=True)
class FrontendState:
    """The settings of one app and the group committer its requests send and ping through."""

    settings: FrontendSettings
    sender: GroupCommitter


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
