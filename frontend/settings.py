"""Settings of the webhook frontend and its gunicorn server, read once at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import (
    STORAGE_NAMES,
    EnvReader,
    SettingsError,
    StorageSettings,
    near_misses,
    read_storage,
)

MAX_PORT = 65535
# The frontend waits on the queue, not the CPU: a few processes with several threads each.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 8
# Workers and threads per worker; more is a typo (each worker is a process).
MAX_COUNT = 1024
# A request's head and body must arrive within this from its connection's arrival: time for
# GitHub's largest body (25 MB) over a link of about 40 Mbit/s.
DEFAULT_READ_DEADLINE_S = 5.0
# Every answer leaves within this from the request's arrival, 503 if the queue did not accept
# its message by then; GitHub gives up after 10 s.
# https://docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks
DEFAULT_ANSWER_DEADLINE_S = 5.5
# GitHub's 10 s, less what the answer needs to travel back.
MAX_DEADLINE_S = 9.0


@dataclass(frozen=True)
class FrontendSettings:
    """Settings of the webhook frontend."""

    host: str
    port: int
    webhook_secrets: tuple[str, ...]
    storage: StorageSettings
    packing: bool = True  # deliveries arriving during a send share the next queue message
    workers: int = DEFAULT_WORKERS  # gunicorn's WEB_CONCURRENCY
    threads: int = DEFAULT_THREADS  # gunicorn's threads per worker
    read_deadline_s: float = DEFAULT_READ_DEADLINE_S  # from arrival to the request read whole
    answer_deadline_s: float = DEFAULT_ANSWER_DEADLINE_S  # from arrival to the answer


# What the frontend reads, for warnings about near misses even when loading stops half-way;
# `FRONTEND_` names are its own.
FRONTEND_NAMES = (
    *STORAGE_NAMES,
    "HOST",
    "PORT",
    "GITHUB_WEBHOOK_SECRET",
    "FRONTEND_PACKING",
    "WEB_CONCURRENCY",
    "GUNICORN_THREADS",
    "LOG_FORMAT",
    "LOG_LEVEL",
)
FRONTEND_PREFIX = "FRONTEND_"


def frontend_warnings(env: Mapping[str, str], read: set[str] | None = None) -> list[str]:
    """Names in `env` the frontend does not read but that look meant for it."""
    return near_misses(env, {*FRONTEND_NAMES, *(read or ())}, owned=(FRONTEND_PREFIX,))


def load_frontend_settings(
    env: Mapping[str, str], warnings: list[str] | None = None
) -> FrontendSettings:
    """Frontend settings; refuses to build without a webhook secret.

    `warnings` collects names in `env` that look like mistyped settings.

    Raises:
        SettingsError: a setting is missing or malformed; the message names it.
    """
    reader = EnvReader(env)
    try:
        return _load(reader)
    finally:
        if warnings is not None:
            warnings.extend(frontend_warnings(env, reader.names))


def _load(reader: EnvReader) -> FrontendSettings:
    secrets = reader.texts("GITHUB_WEBHOOK_SECRET")
    if not secrets:
        raise SettingsError(
            "GITHUB_WEBHOOK_SECRET is not set: set it to the secret configured on the GitHub "
            "webhook (several secrets, comma-separated, are all accepted during a rotation)"
        )
    return FrontendSettings(
        host=reader.text("HOST") or "0.0.0.0",
        port=reader.integer("PORT", 8080, 1, MAX_PORT),
        webhook_secrets=secrets,
        storage=read_storage(reader),
        packing=reader.flag("FRONTEND_PACKING", True),
        workers=reader.count("WEB_CONCURRENCY", DEFAULT_WORKERS, MAX_COUNT),
        threads=reader.count("GUNICORN_THREADS", DEFAULT_THREADS, MAX_COUNT),
        read_deadline_s=reader.number(
            "FRONTEND_READ_DEADLINE_SECONDS", DEFAULT_READ_DEADLINE_S, 0.1, MAX_DEADLINE_S
        ),
        answer_deadline_s=reader.number(
            "FRONTEND_ANSWER_DEADLINE_SECONDS", DEFAULT_ANSWER_DEADLINE_S, 0.1, MAX_DEADLINE_S
        ),
    )
