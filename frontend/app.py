"""The Flask application factory of the webhook frontend."""

from __future__ import annotations

from flask import Flask

from common.azure_queue import FRONTEND_TIMEOUTS, AzureQueue
from common.queue import MessageQueue
from common.settings import environment
from frontend.batching import DirectSender, GroupCommitter, Sender
from frontend.deadline import QUEUE_DEADLINE_S, DeadlineQueue
from frontend.settings import FrontendSettings, load_frontend_settings
from frontend.state import EXTENSION, FrontendState, LazyQueue
from frontend.views import blueprint

# GitHub caps webhook payloads at 25 MB.
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap
MAX_BODY_BYTES = 25 * 1024 * 1024


def create_app(
    settings: FrontendSettings | None = None,
    queue: MessageQueue | None = None,
    queue_deadline_s: float = QUEUE_DEADLINE_S,
) -> Flask:
    """Build the frontend app.

    Args:
        settings: the frontend settings; read from the environment and `.env` when omitted.
        queue: the queue to send to; an Azure queue client built lazily in each process when
            omitted (tests pass `InMemoryQueue`).
        queue_deadline_s: how long any queue call may take in all before the request gets 503.

    Raises:
        SettingsError: settings are read from the environment and one is missing or malformed
            (no `GITHUB_WEBHOOK_SECRET`, no storage account); the message says what to set.
    """
    if settings is None:
        settings = load_frontend_settings(environment())
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    storage = settings.storage

    def bounded_queue() -> MessageQueue:
        client = queue if queue is not None else AzureQueue(storage, FRONTEND_TIMEOUTS)
        return DeadlineQueue(client, queue_deadline_s)

    lazy = LazyQueue(bounded_queue)
    sender: Sender = GroupCommitter(lazy.get) if settings.packing else DirectSender(lazy.get)
    app.extensions[EXTENSION] = FrontendState(settings, lazy, sender)
    app.register_blueprint(blueprint)
    return app
