"""How gunicorn serves the frontend: where it listens, how many workers, and its logs."""

from __future__ import annotations

import datetime
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gunicorn.glogging import Logger

from common.logs import LogSettings, configure_logging, formatter, load_log_settings
from common.settings import SettingsError, environment, refuse_to_start
from frontend.settings import load_frontend_settings

SERVICE = "frontend"
log = logging.getLogger("frontend")
# Requests that `frontend.views` already logs in one line with everything the access line has.
DELIVERY_LOGGED = frozenset({("POST", "/webhook")})


@dataclass(frozen=True)
class ServerOptions:
    """The gunicorn settings taken from the environment."""

    bind: str
    workers: int
    threads: int
    logging: LogSettings = LogSettings()


def server_options(env: Mapping[str, str]) -> ServerOptions:
    """Where gunicorn listens and how many workers and threads it runs, from the settings.

    Every frontend setting is checked here, in the master, before any worker forks.

    Raises:
        SettingsError: a frontend setting is missing or malformed (the message says which).
    """
    settings = load_frontend_settings(env)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return ServerOptions(
        bind=f"{host}:{settings.port}",
        workers=settings.workers,
        threads=settings.threads,
        logging=load_log_settings(env),
    )


def startup_options(env: Mapping[str, str]) -> ServerOptions:
    """The server options, after warning about mistyped names; exits 78 on a bad setting."""
    warnings: list[str] = []
    try:
        configure_logging(SERVICE, load_log_settings(env))
        load_frontend_settings(env, warnings)
        options = server_options(env)
    except SettingsError as error:
        for warning in warnings:
            print(f"github-telemetry {SERVICE}: {warning}", file=sys.stderr)
        refuse_to_start(SERVICE, error)
    for warning in warnings:
        log.warning("%s", warning)
    return options


def log_settings() -> LogSettings:
    """How gunicorn's own logger writes: `LOG_FORMAT` and `LOG_LEVEL`, JSON when unreadable."""
    try:
        return load_log_settings(environment())
    except SettingsError:
        return LogSettings()  # the configuration file has already refused to start


class JsonGunicornLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger in the LOG_FORMAT; access lines carry the path, never the query."""

    def setup(self, cfg: Any) -> None:
        """Set gunicorn's handlers up as usual, then make them write JSON (or text)."""
        super().setup(cfg)
        chosen = formatter(SERVICE, log_settings())
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(chosen)

    def access(
        self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: datetime.timedelta
    ) -> None:
        """Log one request: method, path, status, bytes sent, duration and client."""
        method = str(environ.get("REQUEST_METHOD", "-"))
        path = str(environ.get("PATH_INFO", "-"))
        if not self.access_log_enabled or (method, path) in DELIVERY_LOGGED:
            return
        status = int(str(resp.status).split(None, 1)[0])
        self.access_log.log(
            logging.INFO,
            "%s %s %d",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "bytes": getattr(resp, "sent", None),
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "remote_addr": environ.get("REMOTE_ADDR", "-"),
                "user_agent": environ.get("HTTP_USER_AGENT", "-"),
            },
        )
