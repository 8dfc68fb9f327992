"""The Flask application factory of the webhook frontend."""

from __future__ import annotations

import logging

from flask import Flask

from common.azure_queue import FRONTEND_TIMEOUTS, AzureQueue
from common.queue import QueueProducer, QueueUnavailable
from common.settings import StorageSettings, environment
from frontend.batching import MAX_DELIVERIES_PER_MESSAGE, GroupCommitter
from frontend.framing import MAX_BODY_BYTES
from frontend.settings import FrontendSettings, load_frontend_settings
from frontend.state import EXTENSION, FrontendState
from frontend.views import blueprint

log = logging.getLogger(__name__)


def create_app(
    settings: FrontendSettings | None = None,
    queue: QueueProducer | None = None,
    queue_deadline_s: float | None = None,
) -> Flask:
    """Build the frontend app, its queue client and its sender (whose threads start on use).

    gunicorn calls this in each worker after the fork (`preload_app` stays off), so no client
    or thread is ever shared between processes.

    Args:
        settings: the frontend settings; read from the environment and `.env` when omitted.
        queue: the queue to send to; the Azure queue of `settings` when omitted (tests pass
            `InMemoryQueue`).
        queue_deadline_s: how long a request may wait for the queue in all before its 503;
            the settings' answer deadline when omitted (a delivery waits only what is left of
            it since its arrival).

    Raises:
        SettingsError: settings are read from the environment and one is missing or malformed
            (no `GITHUB_WEBHOOK_SECRET`, no storage account); the message says what to set.
    """
    if settings is None:
        settings = load_frontend_settings(environment())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    sender = GroupCommitter(
        queue if queue is not None else connect_queue(settings.storage),
        max_per_message=MAX_DELIVERIES_PER_MESSAGE if settings.packing else 1,
        deadline_s=settings.answer_deadline_s if queue_deadline_s is None else queue_deadline_s,
    )
    app.extensions[EXTENSION] = FrontendState(settings, sender)
    app.register_blueprint(blueprint)
    return app


def connect_queue(storage: StorageSettings) -> QueueProducer:
    """The Azure queue client; one that cannot be built makes every call a 503, not a 500."""
    try:
        return AzureQueue(storage, FRONTEND_TIMEOUTS)
    except Exception as error:
        # Its message may quote the connection string, which holds a key.
        reason = f"the queue client cannot be built ({type(error).__name__})"
        log.error("queue %s: %s", storage.queue_name, reason)
        return UnbuiltQueue(storage.queue_name, reason)


class UnbuiltQueue:
    """Stands in for a queue client its settings could not build: every call is unavailable."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def send(self, content: str) -> str:
        """Refuse: there is no client to send with."""
        raise QueueUnavailable(self.reason)

    def ping(self) -> None:
        """Refuse: there is no client to ask."""
        raise QueueUnavailable(self.reason)
