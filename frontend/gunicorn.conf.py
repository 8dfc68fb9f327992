"""gunicorn configuration of the frontend: `gunicorn --config frontend/gunicorn.conf.py ...`.

Everything comes from the environment and `.env`; the master checks every frontend setting
before it forks, so a missing GITHUB_WEBHOOK_SECRET stops it with a message and exit status 78.
"""

from __future__ import annotations

from typing import Any

from common.logs import configure_logging
from common.settings import environment
from frontend.serving import SERVICE, startup_options
from frontend.state import close_sender

_options = startup_options(environment())

bind = [_options.bind]
workers = _options.workers
threads = _options.threads
# gthread with a non-blocking read stage: a thread only gets a request that has fully arrived.
worker_class = "frontend.worker.ReadAheadWorker"
# Connections accepted by the kernel and not yet by a worker: bounded, so that a flood waits
# in the clients' SYN retries instead of here, past GitHub's 10 s.
backlog = 128
# Connections one worker holds at once, in every stage (being read, waiting for a thread, on a
# thread, kept alive): past it the worker accepts nothing until one closes. gunicorn's default,
# set here because the read stage's cap on waiting requests (512) is sized below it; the
# process's open-file limit must stay above it.
worker_connections = 1000
# Each worker builds its own app after the fork, and with it its queue client; its sender
# threads start on its first request. Nothing is shared with the master or other workers.
preload_app = False
# GitHub gives up after 10 s; every answer leaves within FRONTEND_ANSWER_DEADLINE_SECONDS of
# the request's arrival. This is gunicorn's heartbeat timeout, not a request's.
timeout = 30
graceful_timeout = 20
keepalive = 5
# gunicorn's control socket lives in $HOME by default: two frontends on one host would share
# it, and nothing here uses it.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
logger_class = "frontend.serving.JsonGunicornLogger"


def on_starting(server: Any) -> None:
    """Send the application's own log records to stderr as JSON, in the master and workers."""
    configure_logging(SERVICE, _options.logging)


def worker_exit(server: Any, worker: Any) -> None:
    """Send the deliveries still waiting for a queue message before the worker goes."""
    close_sender(getattr(worker, "wsgi", None))
